//! What the packaging files promise each other: `server.json` (the MCP registry's entry,
//! schema 2025-12-11) names this version and the name the image's label carries (the registry
//! checks an OCI package by that label), and its fields fit the schema's limits.

use std::fs;
use std::path::Path;

fn file(name: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect(name)
}

#[test]
fn server_json_fits_the_registry_schema_and_this_build() {
    let server: serde_json::Value = serde_json::from_str(&file("server.json")).expect("JSON");
    assert_eq!(
        server["$schema"],
        "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    );
    let name = server["name"].as_str().expect("name");
    let (namespace, short) = name.split_once('/').expect("reverse-DNS namespace/name");
    let allowed = |text: &str, extra: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    assert!(allowed(namespace, ".-") && allowed(short, "._-"), "{name}");
    let description = server["description"].as_str().expect("description");
    assert!(
        (1..=100).contains(&description.chars().count()),
        "{description}"
    );
    assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    let packages = server["packages"].as_array().expect("packages");
    assert!(!packages.is_empty());
    for package in packages {
        for field in ["registryType", "identifier", "transport"] {
            assert!(package.get(field).is_some(), "{field} in {package}");
        }
        let identifier = package["identifier"].as_str().expect("identifier");
        assert!(
            identifier.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
            "{identifier} names this version"
        );
    }
    // The image carries the same name in the label the registry verifies.
    let dockerfile = file("Dockerfile");
    assert!(
        dockerfile.contains(&format!("io.modelcontextprotocol.server.name=\"{name}\"")),
        "the Dockerfile's label names {name}"
    );
}
