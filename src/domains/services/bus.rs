//! The connection to systemd: the system bus, reached on first use and again after it went away,
//! so a D-Bus daemon restarted under the server is found without restarting the server. Also
//! what the bus's failures mean to a caller, and unit properties read in one `GetAll`.

use std::collections::HashMap;

use zbus::proxy::CacheProperties;
use zbus::{Connection, OwnedObjectPath, OwnedVariant, Variant};
use zbus_systemd::systemd1::ManagerProxy;

use crate::tool::{ToolError, ToolErrorKind};

const DESTINATION: &str = "org.freedesktop.systemd1";

/// The system bus, as systemd's clients reach it (`DBUS_SYSTEM_BUS_ADDRESS`, else
/// `/run/dbus/system_bus_socket`).
pub(crate) struct Systemd {
    /// The connection and systemd's manager on it, once the bus answered; forgotten when the
    /// bus is found gone. Never held across an await.
    connected: std::sync::Mutex<Option<(Connection, ManagerProxy<'static>)>>,
}

impl Systemd {
    pub(crate) fn new() -> Self {
        Self {
            connected: std::sync::Mutex::new(None),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(Connection, ManagerProxy<'static>)>> {
        self.connected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection and the manager, connecting when there is none. Two calls that find
    /// none may both connect; the last kept is as good as the first.
    ///
    /// With `check`, a kept connection is pinged first (one short round trip) and replaced
    /// when the bus it led to is gone (a restarted dbus), so no call fails for that.
    async fn connected(
        &self,
        check: bool,
    ) -> Result<(Connection, ManagerProxy<'static>), ToolError> {
        let kept = self.cached().clone();
        if let Some((connection, manager)) = kept {
            if !check || ping(&connection).await {
                return Ok((connection, manager));
            }
            *self.cached() = None;
        }
        let connection = Connection::system().await.map_err(|error| {
            ToolError::unavailable(format!(
                "systemd's bus is not reachable: {error}; is dbus running \
                 (/run/dbus/system_bus_socket, or DBUS_SYSTEM_BUS_ADDRESS)?"
            ))
        })?;
        // No property cache: it would watch the manager's every change, which no tool reads.
        let manager = ManagerProxy::builder(&connection)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|error| self.explain(error))?;
        *self.cached() = Some((connection.clone(), manager.clone()));
        Ok((connection, manager))
    }

    /// systemd's manager object.
    pub(crate) async fn manager(&self) -> Result<ManagerProxy<'static>, ToolError> {
        Ok(self.connected(true).await?.1)
    }

    /// Forgets the connection (its bus went away under a call): the next call connects afresh.
    pub(crate) fn forget(&self) {
        *self.cached() = None;
    }

    /// Every property of `interface` (`org.freedesktop.systemd1.Unit`, `….Service`) of the
    /// unit at `path`, in one round trip (`org.freedesktop.DBus.Properties.GetAll`, called
    /// directly: a proxy per unit would cost its set-up each time).
    pub(crate) async fn properties(
        &self,
        path: &OwnedObjectPath,
        interface: &'static str,
    ) -> Result<Properties, ToolError> {
        let (connection, _) = self.connected(false).await?;
        let reply = connection
            .call_method(
                Some(DESTINATION),
                path.as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &(interface,),
            )
            .await
            .map_err(|error| self.explain(error))?;
        let all: HashMap<String, OwnedVariant> = reply
            .body()
            .deserialize()
            .map_err(|error| self.explain(error))?;
        Ok(Properties(all))
    }

    /// A caller's view of a bus error: systemd's own error names mapped to what they mean,
    /// and a bus that cannot be reached said so (and connected afresh on the next call).
    pub(crate) fn explain(&self, error: zbus::Error) -> ToolError {
        match &error {
            zbus::Error::MethodError(name, message, _) => {
                let message = message.clone().unwrap_or_default();
                match name.as_str() {
                    "org.freedesktop.systemd1.NoSuchUnit"
                    | "org.freedesktop.systemd1.LoadFailed" => ToolError::not_found(message),
                    "org.freedesktop.DBus.Error.AccessDenied"
                    | "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired" => {
                        ToolError::failed(format!(
                            "systemd refused: {message} (the server needs to run as root, or \
                             polkit must allow its user)"
                        ))
                    }
                    "org.freedesktop.DBus.Error.InvalidArgs"
                    | "org.freedesktop.systemd1.NoSuchUnitFile" => {
                        ToolError::invalid_arguments(message)
                    }
                    _ => ToolError::failed(format!("systemd: {message} ({name})")),
                }
            }
            zbus::Error::FDO(fdo) => ToolError::failed(format!("systemd: {fdo}")),
            zbus::Error::InputOutput(_)
            | zbus::Error::Address(_)
            | zbus::Error::Handshake(_)
            | zbus::Error::Failure(_) => {
                *self.cached() = None;
                ToolError::unavailable(format!(
                    "systemd's bus is not reachable: {error}; is dbus running \
                     (/run/dbus/system_bus_socket, or DBUS_SYSTEM_BUS_ADDRESS)?"
                ))
            }
            _ => {
                // Anything else may be a connection that broke: connect afresh next time.
                *self.cached() = None;
                ToolError::new(ToolErrorKind::Failed, format!("systemd's bus: {error}"))
            }
        }
    }
}

/// Whether the bus behind `connection` still answers (`org.freedesktop.DBus.Peer.Ping`).
async fn ping(connection: &Connection) -> bool {
    connection
        .call_method(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            Some("org.freedesktop.DBus.Peer"),
            "Ping",
            &(),
        )
        .await
        .is_ok()
}

/// Properties as `GetAll` answers them, read by name with the type systemd documents.
pub(crate) struct Properties(HashMap<String, OwnedVariant>);

/// systemd's "not set" for 64-bit figures (`MemoryCurrent` without accounting, a timestamp
/// never reached).
const UNSET: u64 = u64::MAX;

impl Properties {
    fn get(&self, name: &str) -> Option<&Variant<'static>> {
        let mut value: &Variant<'static> = self.0.get(name)?;
        while let Variant::Variant(inner) = value {
            value = inner;
        }
        Some(value)
    }

    /// A string property; empty when absent.
    pub(crate) fn text(&self, name: &str) -> String {
        match self.get(name) {
            Some(Variant::Str(text)) => text.to_string(),
            Some(Variant::ObjectPath(path)) => path.as_str().to_string(),
            _ => String::new(),
        }
    }

    /// A string property, or `None` when absent or empty.
    pub(crate) fn some_text(&self, name: &str) -> Option<String> {
        Some(self.text(name)).filter(|text| !text.is_empty())
    }

    /// An unsigned figure; `None` when absent or systemd's "not set".
    pub(crate) fn number(&self, name: &str) -> Option<u64> {
        let value = match self.get(name)? {
            Variant::U8(value) => u64::from(*value),
            Variant::U16(value) => u64::from(*value),
            Variant::U32(value) => u64::from(*value),
            Variant::U64(value) => *value,
            Variant::I32(value) => u64::try_from(*value).ok()?,
            Variant::I64(value) => u64::try_from(*value).ok()?,
            _ => return None,
        };
        (value != UNSET).then_some(value)
    }

    /// A signed figure (an exit status).
    pub(crate) fn signed(&self, name: &str) -> Option<i64> {
        match self.get(name)? {
            Variant::I32(value) => Some(i64::from(*value)),
            Variant::I64(value) => Some(*value),
            Variant::U32(value) => Some(i64::from(*value)),
            _ => None,
        }
    }

    /// A list of strings (unit names, paths).
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        match self.get(name) {
            Some(Variant::Array(array)) => array
                .inner()
                .iter()
                .filter_map(|item| match item {
                    Variant::Str(text) => Some(text.to_string()),
                    Variant::ObjectPath(path) => Some(path.as_str().to_string()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A wall-clock timestamp (µs since the epoch) as RFC 3339; `None` when never reached.
    pub(crate) fn time(&self, name: &str) -> Option<String> {
        self.number(name)
            .filter(|micros| *micros > 0)
            .and_then(rfc3339_micros)
    }
}

/// Microseconds since the epoch as RFC 3339 (UTC, microsecond precision).
pub(crate) fn rfc3339_micros(micros: u64) -> Option<String> {
    let micros = i64::try_from(micros).ok()?;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// The unit types systemd has, by their name suffix.
pub(crate) const UNIT_TYPES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "timer",
    "mount",
    "automount",
    "swap",
    "path",
    "slice",
    "scope",
    "device",
];

/// A unit name as systemctl reads it: a name without a type suffix is a service.
pub(crate) fn unit_name(name: &str) -> Result<String, ToolError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b":-_.\\@".contains(&byte));
    if !valid {
        return Err(ToolError::invalid_arguments(format!(
            "`{}` is not a unit name: letters, digits and `:-_.\\@`, at most 255 characters \
             (e.g. nginx.service, or nginx for a service)",
            crate::render::text(name)
        )));
    }
    let typed = name
        .rsplit_once('.')
        .is_some_and(|(_, suffix)| UNIT_TYPES.contains(&suffix));
    let full = if typed {
        name.to_string()
    } else {
        format!("{name}.service")
    };
    // A name before the type, and a template only with its instance (`getty@tty1`).
    let (stem, _) = full.rsplit_once('.').unwrap_or((&full, ""));
    if stem.is_empty() || stem.ends_with('@') || stem.starts_with('@') || full.len() > 255 {
        return Err(ToolError::invalid_arguments(format!(
            "`{}` is not a unit name: a name before the type, a template with its instance \
             (getty@tty1), at most 255 characters with the type",
            crate::render::text(name)
        )));
    }
    Ok(full)
}

/// The type-specific interface of a unit, by its suffix: where its cgroup figures live.
pub(crate) fn type_interface(unit: &str) -> Option<&'static str> {
    match unit.rsplit_once('.')?.1 {
        "service" => Some("org.freedesktop.systemd1.Service"),
        "socket" => Some("org.freedesktop.systemd1.Socket"),
        "mount" => Some("org.freedesktop.systemd1.Mount"),
        "swap" => Some("org.freedesktop.systemd1.Swap"),
        "scope" => Some("org.freedesktop.systemd1.Scope"),
        "slice" => Some("org.freedesktop.systemd1.Slice"),
        "timer" => Some("org.freedesktop.systemd1.Timer"),
        _ => None,
    }
}

pub(crate) const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_a_type_are_services() {
        assert_eq!(unit_name("nginx").expect("valid"), "nginx.service");
        assert_eq!(unit_name("nginx.service").expect("valid"), "nginx.service");
        assert_eq!(unit_name("foo.timer").expect("valid"), "foo.timer");
        assert_eq!(
            unit_name("getty@tty1").expect("valid"),
            "getty@tty1.service"
        );
        assert_eq!(unit_name("a.b").expect("valid"), "a.b.service");
        let long = "x".repeat(250);
        for bad in [
            "", "../x", "a b", "x;y", "a\nb", "@", ".service", "tpl@", &long,
        ] {
            assert!(unit_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn microseconds_become_rfc3339() {
        assert_eq!(
            rfc3339_micros(1_796_066_031_941_611).as_deref(),
            Some("2026-11-30T19:13:51.941611Z")
        );
    }
}
