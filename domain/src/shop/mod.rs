//! A seller that lists products.

mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::ShopCommand;
pub use error::ShopError;
pub use events::ShopEvent;

use crate::values::{optional_text, required_text, ShopId};

pub const NAME_MAX: usize = 100;
pub const DESCRIPTION_MAX: usize = 2000;
pub const ADDRESS_MAX: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shop {
    created: bool,
    shop_id: ShopId,
    name: String,
    description: Option<String>,
    address: Option<String>,
}

impl Shop {
    pub fn is_created(&self) -> bool {
        self.created
    }
    pub fn shop_id(&self) -> ShopId {
        self.shop_id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }
}

fn parse_name(raw: &str) -> Result<String, ShopError> {
    required_text("name", raw, NAME_MAX).map_err(ShopError::InvalidName)
}

fn parse_description(raw: Option<&str>) -> Result<Option<String>, ShopError> {
    optional_text("description", raw, DESCRIPTION_MAX).map_err(ShopError::InvalidDescription)
}

fn parse_address(raw: Option<&str>) -> Result<Option<String>, ShopError> {
    optional_text("address", raw, ADDRESS_MAX).map_err(ShopError::InvalidAddress)
}

impl Aggregate for Shop {
    const TYPE: &'static str = "Shop";
    type Command = ShopCommand;
    type Event = ShopEvent;
    type Error = ShopError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ShopCommand::Create {
                shop_id,
                name,
                description,
                address,
            } => {
                if self.created {
                    return Err(ShopError::AlreadyExists {
                        shop_id: self.shop_id,
                    });
                }
                let event = ShopEvent::ShopCreated {
                    shop_id,
                    name: parse_name(&name)?,
                    description: parse_description(description.as_deref())?,
                    address: parse_address(address.as_deref())?,
                };
                sink.write(event, self).await;
            }
            ShopCommand::Update {
                name,
                description,
                address,
            } => {
                if !self.created {
                    return Err(ShopError::NotFound);
                }
                let name = match name {
                    Some(raw) => parse_name(&raw)?,
                    None => self.name.clone(),
                };
                let description = match description {
                    Some(raw) => parse_description(Some(&raw))?,
                    None => self.description.clone(),
                };
                let address = match address {
                    Some(raw) => parse_address(Some(&raw))?,
                    None => self.address.clone(),
                };
                if name == self.name && description == self.description && address == self.address {
                    return Ok(());
                }
                let event = ShopEvent::ShopUpdated {
                    shop_id: self.shop_id,
                    name,
                    description,
                    address,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ShopEvent::ShopCreated {
                shop_id,
                name,
                description,
                address,
            }
            | ShopEvent::ShopUpdated {
                shop_id,
                name,
                description,
                address,
            } => {
                self.created = true;
                self.shop_id = shop_id;
                self.name = name;
                self.description = description;
                self.address = address;
            }
        }
    }
}

/// Loaded from a snapshot plus its later events; nothing recalled by key.
impl crate::stored::StoredAggregate for Shop {}
