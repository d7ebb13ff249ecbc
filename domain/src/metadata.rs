//! What every stored event says about where it came from.
//!
//! cqrs-es stores a `HashMap<String, String>` next to each event; these are its
//! keys. Every command is executed with all of them, so an auditor can answer
//! "who did this, in which request, because of what" for any event.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const ACTOR: &str = "actor";
pub const CORRELATION_ID: &str = "correlation_id";
pub const CAUSATION_ID: &str = "causation_id";
pub const COMMAND: &str = "command";
pub const COMMAND_ID: &str = "command_id";
/// Hash of an idempotent request's body, to tell a replay from a different body.
pub const REQUEST_HASH: &str = "request_hash";
/// The `X-Request-Id` the client sent, kept as the client's own label of
/// its request: the correlation id itself is always the server's.
pub const CLIENT_REQUEST_ID: &str = "client_request_id";

/// Account roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
    Operator,
    Auditor,
    /// Another service that reads the shop's integration events (the feed).
    Integration,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Integration => "integration",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            "auditor" => Some(Role::Auditor),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who caused a command: a signed-in user, nobody yet (registration), or a
/// workflow of the system itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User { id: Uuid, role: Role },
    Anonymous,
    System(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { id, role } => write!(f, "{role}:{id}"),
            Actor::Anonymous => f.write_str("anonymous"),
            Actor::System(name) => write!(f, "system:{name}"),
        }
    }
}

impl Actor {
    /// A stored actor (`admin:<uuid>`, `system:fulfilment`, ...) as told to
    /// a customer, who may not learn staff accounts' ids: a user's role
    /// alone (`admin`); anything else as it is.
    pub fn role_only(stored: &str) -> &str {
        match stored.split_once(':') {
            Some((role, id)) if Role::parse(role).is_some() && Uuid::parse_str(id).is_ok() => role,
            _ => stored,
        }
    }
}

/// The metadata of one command, attached to each event it produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMetadata {
    pub actor: Actor,
    /// The request's id, made by the server (never the client's), shared by
    /// everything it caused.
    pub correlation_id: String,
    /// The command's own id for a request, or the triggering event's id for a
    /// workflow step.
    pub causation_id: String,
    pub command: String,
    pub command_id: Uuid,
    pub request_hash: Option<String>,
    /// The client's `X-Request-Id` of the request, when it sent one.
    pub client_request_id: Option<String>,
}

impl CommandMetadata {
    pub fn new(
        actor: Actor,
        correlation_id: impl Into<String>,
        command: impl Into<String>,
    ) -> Self {
        let command_id = Uuid::new_v4();
        Self {
            actor,
            correlation_id: correlation_id.into(),
            causation_id: command_id.to_string(),
            command: command.into(),
            command_id,
            request_hash: None,
            client_request_id: None,
        }
    }

    /// A workflow step caused by an earlier event.
    pub fn caused_by(mut self, causation_id: impl Into<String>) -> Self {
        self.causation_id = causation_id.into();
        self
    }

    pub fn with_request_hash(mut self, hash: impl Into<String>) -> Self {
        self.request_hash = Some(hash.into());
        self
    }

    /// Keeps the client's own id of the request beside the correlation id.
    pub fn with_client_request_id(mut self, id: Option<String>) -> Self {
        self.client_request_id = id;
        self
    }

    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (ACTOR.to_string(), self.actor.to_string()),
            (CORRELATION_ID.to_string(), self.correlation_id.clone()),
            (CAUSATION_ID.to_string(), self.causation_id.clone()),
            (COMMAND.to_string(), self.command.clone()),
            (COMMAND_ID.to_string(), self.command_id.to_string()),
        ]);
        if let Some(hash) = &self.request_hash {
            map.insert(REQUEST_HASH.to_string(), hash.clone());
        }
        if let Some(id) = &self.client_request_id {
            map.insert(CLIENT_REQUEST_ID.to_string(), id.clone());
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_actor_told_without_its_id_is_its_role() {
        let id = Uuid::new_v4();
        let admin = Actor::User {
            id,
            role: Role::Admin,
        }
        .to_string();
        assert_eq!(Actor::role_only(&admin), "admin");
        assert_eq!(Actor::role_only("system:fulfilment"), "system:fulfilment");
        assert_eq!(Actor::role_only("anonymous"), "anonymous");
        assert_eq!(Actor::role_only("admin:not-an-id"), "admin:not-an-id");
    }
}
