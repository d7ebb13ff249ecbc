//! The stored form of an event: its personal fields encrypted, its shape
//! that of the version it was written in. The one place between the events
//! table and every reader of it (loading, replaying, the log for projectors
//! and rebuilds, history, `as_of`, the auditors' view): [`seal`] on the way
//! in, [`open`] on the way out.
//!
//! # Encrypted fields
//!
//! Each personal field (`domain::personal_fields`) of a new event is stored
//! as `{"encrypted": "<base64 of nonce || AES-256-GCM ciphertext>", "key":
//! "<customer id>"}`, encrypted with the data key of the customer the
//! event's `customer_id` names (`crate::keys`), the ciphertext bound to that
//! customer and the field's name. The event row's `personal_key` column
//! names the same customer, so a reader gets the wrapped key in the same
//! statement as the event. The hash chain covers the stored (encrypted)
//! payload, so deleting a key never breaks it.
//!
//! On read, a field whose key is gone (the customer was forgotten) reads as
//! `domain::personal::ERASED`; a plain value (an event stored before fields
//! were encrypted) reads as stored.
//!
//! # Versions
//!
//! An event is read as the current version of its type: [`upcast`] turns
//! each older stored shape into the next, in order.
//!
//! | aggregate | event | stored | read as | change |
//! |---|---|---|---|---|
//! | `Customer` | `RoleChanged` | 1.0 | 2.0 | `old_role`, `new_role` renamed `from`, `to` |

use std::collections::HashMap;

use base64::Engine;
use domain::personal::{ERASED, SUBJECT_FIELD};
use serde_json::{Map, Value};
use sqlx::PgPool;

use crate::keys::{self, DataKey, KeyError};

const ENCRYPTED: &str = "encrypted";
const KEY: &str = "key";

/// The variant body of an externally tagged payload (`{"Variant": {...}}`).
fn body_mut(payload: &mut Value) -> Option<&mut Map<String, Value>> {
    payload
        .as_object_mut()?
        .values_mut()
        .next()
        .and_then(Value::as_object_mut)
}

/// The customer whose personal fields a new event of `event_type` holds, if
/// it holds any.
fn subject_of(aggregate_type: &str, event_type: &str, payload: &Value) -> Option<String> {
    let fields = domain::personal_fields(aggregate_type, event_type)?;
    if fields.is_empty() {
        return None;
    }
    let body = payload.as_object()?.values().next()?.as_object()?;
    if !fields.iter().any(|f| body.contains_key(*f)) {
        return None;
    }
    body.get(SUBJECT_FIELD)?.as_str().map(str::to_string)
}

/// The context a field's ciphertext is bound to.
fn context(subject: &str, field: &str) -> Vec<u8> {
    format!("{subject}\u{1f}{field}").into_bytes()
}

/// A new event as stored: its payload with the personal fields encrypted,
/// and the customer whose key encrypted them.
#[derive(Debug)]
pub struct Sealed {
    pub payload: String,
    pub personal_key: Option<String>,
}

/// Encrypts the personal fields of new events, given as `(aggregate type,
/// event type, payload)`: each with the data key of its customer, made if
/// the customer has none yet; a forgotten customer's fields are stored
/// erased.
pub async fn seal(pool: &PgPool, events: &[(&str, &str, &str)]) -> Result<Vec<Sealed>, KeyError> {
    let mut parsed = Vec::with_capacity(events.len());
    let mut subjects: Vec<String> = Vec::new();
    for (aggregate_type, event_type, payload) in events {
        let subject =
            if domain::personal_fields(aggregate_type, event_type).is_some_and(|f| !f.is_empty()) {
                let value: Value = serde_json::from_str(payload)
                    .map_err(|e| KeyError::Unsealable(e.to_string()))?;
                let subject = subject_of(aggregate_type, event_type, &value);
                if let Some(s) = &subject {
                    if !subjects.contains(s) {
                        subjects.push(s.clone());
                    }
                }
                subject.map(|s| (s, value))
            } else {
                None
            };
        parsed.push(subject);
    }
    let keys: HashMap<String, Option<DataKey>> = if subjects.is_empty() {
        HashMap::new()
    } else {
        keys::for_writing(pool, &subjects).await?
    };
    let mut sealed = Vec::with_capacity(events.len());
    for ((aggregate_type, event_type, payload), subject) in events.iter().zip(parsed) {
        let Some((subject, mut value)) = subject else {
            sealed.push(Sealed {
                payload: (*payload).to_string(),
                personal_key: None,
            });
            continue;
        };
        let key = keys
            .get(&subject)
            .cloned()
            .ok_or_else(|| KeyError::Unsealable(format!("no data key was made for {subject}")))?;
        let fields = domain::personal_fields(aggregate_type, event_type).unwrap_or_default();
        if let Some(body) = body_mut(&mut value) {
            for field in fields {
                let Some(plain) = body.get_mut(*field) else {
                    continue;
                };
                *plain = match &key {
                    Some(key) => {
                        let text = plain.to_string();
                        let ciphertext = key.seal(text.as_bytes(), &context(&subject, field));
                        serde_json::json!({
                            ENCRYPTED: base64::engine::general_purpose::STANDARD.encode(ciphertext),
                            KEY: &subject,
                        })
                    }
                    None => Value::String(ERASED.to_string()),
                };
            }
        }
        sealed.push(Sealed {
            payload: value.to_string(),
            personal_key: key.is_some().then_some(subject),
        });
    }
    Ok(sealed)
}

/// A stored event as its readers get it: its personal fields decrypted
/// (erased when `wrapped_key`, the stored key of its `personal_key`, is gone)
/// and upcast to the current version of its type. `event_version` is set to
/// that version.
pub fn open(
    aggregate_type: &str,
    event_type: &str,
    event_version: &mut String,
    payload: &mut Value,
    wrapped_key: Option<&[u8]>,
) -> Result<(), KeyError> {
    decrypt(payload, wrapped_key)?;
    upcast(aggregate_type, event_type, event_version, payload);
    Ok(())
}

fn decrypt(payload: &mut Value, wrapped_key: Option<&[u8]>) -> Result<(), KeyError> {
    let Some(body) = body_mut(payload) else {
        return Ok(());
    };
    let mut key: Option<DataKey> = None;
    for (field, value) in body.iter_mut() {
        let Some((ciphertext, subject)) = envelope(value) else {
            continue;
        };
        let Some(wrapped) = wrapped_key else {
            *value = Value::String(ERASED.to_string());
            continue;
        };
        if key.is_none() {
            key = Some(keys::unwrap(&subject, wrapped)?);
        }
        let Some(data_key) = &key else { continue };
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(ciphertext)
            .map_err(|_| KeyError::Undecryptable)?;
        let plain = data_key.open(&sealed, &context(&subject, field))?;
        *value = serde_json::from_slice(&plain).map_err(|_| KeyError::Undecryptable)?;
    }
    Ok(())
}

/// `(ciphertext, subject)` of an encrypted field.
fn envelope(value: &Value) -> Option<(String, String)> {
    let object = value.as_object()?;
    if object.len() != 2 {
        return None;
    }
    let ciphertext = object.get(ENCRYPTED)?.as_str()?;
    let subject = object.get(KEY)?.as_str()?;
    Some((ciphertext.to_string(), subject.to_string()))
}

/// Turns a stored event of an older version into the current one (see the
/// table in the module docs). An event already current is left alone.
pub fn upcast(aggregate_type: &str, event_type: &str, version: &mut String, payload: &mut Value) {
    if let ("Customer", "RoleChanged", "1.0") = (aggregate_type, event_type, version.as_str()) {
        if let Some(body) = body_mut(payload) {
            rename(body, "old_role", "from");
            rename(body, "new_role", "to");
        }
        *version = "2.0".to_string();
    }
}

fn rename(body: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(value) = body.remove(from) {
        body.insert(to.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_role_change_stored_as_version_1_reads_as_version_2() {
        let id = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let mut payload = json!({"RoleChanged": {"customer_id": id, "old_role": "customer", "new_role": "admin"}});
        let mut version = "1.0".to_string();
        open("Customer", "RoleChanged", &mut version, &mut payload, None).unwrap();
        assert_eq!(version, "2.0");
        assert_eq!(
            payload,
            json!({"RoleChanged": {"customer_id": id, "from": "customer", "to": "admin"}})
        );
        let event: domain::customer::CustomerEvent = serde_json::from_value(payload).unwrap();
        assert!(matches!(
            event,
            domain::customer::CustomerEvent::RoleChanged { .. }
        ));
    }

    #[test]
    fn an_encrypted_field_without_its_key_reads_erased_and_a_plain_one_as_stored() {
        let mut payload = json!({"OrderPlaced": {
            "customer_id": "c",
            "shipping_address": {"encrypted": "AAAA", "key": "c"},
            "currency": "USD"}});
        let mut version = "1.0".to_string();
        open("Order", "OrderPlaced", &mut version, &mut payload, None).unwrap();
        assert_eq!(payload["OrderPlaced"]["shipping_address"], json!(ERASED));
        assert_eq!(payload["OrderPlaced"]["currency"], json!("USD"));
    }
}
