//! Choosing the new service's port: the next one after the highest service port, skipping every port the
//! compose stack already publishes.

use std::collections::BTreeSet;

use serde_norway::Value;

/// Ports already taken in the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsedPorts {
    /// The services' own ports (chart values and compose build args).
    pub services: BTreeSet<u16>,
    /// Every port compose publishes on the host (monitoring UIs included).
    pub published: BTreeSet<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port {0} is already used by the stack")]
    Taken(u16),
    #[error("port 0 is not a fixed port")]
    Zero,
    #[error("no free port after {0}")]
    Exhausted(u16),
    #[error("cannot read the ports in use: {0}")]
    Yaml(#[from] serde_norway::Error),
}

impl UsedPorts {
    /// Reads the chart's `services.*.port` and compose's build args and published ports.
    pub fn read(values_yaml: &str, compose_yaml: &str) -> Result<Self, PortError> {
        let values: Value = serde_norway::from_str(values_yaml)?;
        let mut compose: Value = serde_norway::from_str(compose_yaml)?;
        compose.apply_merge()?;
        let mut used = Self::default();
        for service in mapping_values(&values["services"]) {
            used.services.extend(service["port"].as_u64().and_then(|port| u16::try_from(port).ok()));
        }
        for service in mapping_values(&compose["services"]) {
            used.services.extend(service["build"]["args"]["PORT"].as_str().and_then(|port| port.parse::<u16>().ok()));
            for published in service["ports"].as_sequence().into_iter().flatten().filter_map(Value::as_str) {
                // `[ip:]host:container`: the host port is the second-to-last field.
                let fields: Vec<&str> = published.split(':').collect();
                used.published.extend(fields.iter().rev().nth(1).and_then(|port| port.parse::<u16>().ok()));
            }
        }
        Ok(used)
    }

    fn contains(&self, port: u16) -> bool {
        self.services.contains(&port) || self.published.contains(&port)
    }

    /// `requested` if it is free, else the next free port after the highest service port.
    pub fn choose(&self, requested: Option<u16>) -> Result<u16, PortError> {
        match requested {
            Some(0) => Err(PortError::Zero),
            Some(port) if self.contains(port) => Err(PortError::Taken(port)),
            Some(port) => Ok(port),
            None => {
                let highest = self.services.last().copied().unwrap_or(8079);
                (highest.saturating_add(1)..=u16::MAX)
                    .find(|port| !self.contains(*port))
                    .ok_or(PortError::Exhausted(highest))
            }
        }
    }
}

fn mapping_values(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_mapping().into_iter().flat_map(|map| map.values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::new_service::edits::test_support::repo_file;

    fn used(services: &[u16], published: &[u16]) -> UsedPorts {
        UsedPorts { services: services.iter().copied().collect(), published: published.iter().copied().collect() }
    }

    #[test]
    fn the_real_tree_uses_8080_to_8083_and_the_next_is_free() {
        let used = UsedPorts::read(&repo_file("helm/taskwatch/values.yaml"), &repo_file("docker-compose.yml")).unwrap();
        for port in 8080..=8083 {
            assert!(used.services.contains(&port), "{port} in {used:?}");
        }
        assert!(used.published.contains(&9090), "{used:?}");
        let next = used.choose(None).unwrap();
        assert_eq!(next, used.services.last().unwrap() + 1);
    }

    #[test]
    fn the_next_port_skips_published_ones_and_a_requested_port_must_be_free() {
        assert_eq!(used(&[8080, 8081], &[8082, 8083]).choose(None).unwrap(), 8084);
        assert_eq!(used(&[8080], &[]).choose(Some(9000)).unwrap(), 9000);
        assert!(matches!(used(&[8080], &[9090]).choose(Some(9090)), Err(PortError::Taken(9090))));
        assert!(matches!(used(&[8080], &[]).choose(Some(8080)), Err(PortError::Taken(8080))));
        assert!(matches!(used(&[], &[]).choose(Some(0)), Err(PortError::Zero)));
        assert_eq!(used(&[], &[]).choose(None).unwrap(), 8080);
        assert!(matches!(used(&[u16::MAX], &[]).choose(None), Err(PortError::Exhausted(_))));
    }
}
