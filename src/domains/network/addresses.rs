//! Every address of every link in the server's network namespace, as `ip addr` lists them: one
//! RTM_GETADDR dump over rtnetlink, each address with its link's index and its label.
//!
//! Not `getifaddrs(3)`: it names an IPv4 address by its label, so an alias such as
//! `ip addr add 10.99.0.1/24 dev eth0 label eth0:1` (what `ifconfig eth0:1` makes) is filed under
//! `eth0:1`, a name no link has, and was lost.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_sys::protocols::NETLINK_ROUTE;

/// One address of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkAddress {
    /// `192.0.2.2/24`, `fd00::2/64`.
    pub address: String,
    /// The address's label (IPv4 only): the link's own name, or an alias such as `eth0:1`.
    pub label: Option<String>,
}

/// Addresses by link index, in the kernel's order. Errors: the netlink socket cannot be opened
/// or the kernel's answer cannot be read.
pub(crate) fn by_link_index() -> io::Result<BTreeMap<u32, Vec<LinkAddress>>> {
    let mut socket = netlink_sys::Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()).into(),
    );
    request.finalize();
    let mut bytes = vec![0u8; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut found: BTreeMap<u32, Vec<LinkAddress>> = BTreeMap::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..size])
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(address)) => {
                    if let Some(entry) = entry_of(&address) {
                        found.entry(address.header.index).or_default().push(entry);
                    }
                }
                NetlinkPayload::Done(_) => return Ok(found),
                NetlinkPayload::Error(error) => return Err(error.to_io()),
                _ => {}
            }
            let length = message.header.length as usize;
            if length == 0 {
                return Ok(found);
            }
            // Messages in a datagram start on 4-byte boundaries.
            offset += (length + 3) & !3;
        }
    }
}

fn entry_of(message: &AddressMessage) -> Option<LinkAddress> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Label(text) => label = Some(text.clone()),
            _ => {}
        }
    }
    // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on a point-to-point link (and
    // the address itself everywhere else, and for IPv6), as `ip addr` reads them.
    let ip: IpAddr = local.or(address)?;
    Some(LinkAddress {
        address: format!("{ip}/{}", message.header.prefix_len),
        label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_its_address() {
        let found = by_link_index().expect("dump");
        let loopback = nix::net::if_::if_nametoindex("lo").expect("lo");
        let addresses = found.get(&loopback).expect("addresses of lo");
        assert!(
            addresses.iter().any(|a| a.address == "127.0.0.1/8"),
            "{addresses:?}"
        );
    }
}
