//! Email through an SMTP relay (`SHOP_SMTP_URL`), with lettre. Text
//! messages (SMS) have no gateway yet and go to the log.

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{LogNotifier, Notifier, Outgoing};

/// Sends the `email` messages to an SMTP relay.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpNotifier {
    /// `url`: `smtp://[user:password@]host[:port]` (add `?tls=required` for
    /// STARTTLS) or `smtps://...`; `from`: the sender, e.g.
    /// `Shop <orders@example.com>`.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SHOP_SMTP_URL is not a usable SMTP address: {e}"))?
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("SHOP_MAIL_FROM is not an email address: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn send(&self, message: &Outgoing) -> Result<(), String> {
        if message.channel != "email" {
            return LogNotifier.send(message).await;
        }
        let to: Mailbox = message
            .recipient
            .parse()
            .map_err(|e| format!("not an email address: {e}"))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(message.body.clone())
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("the SMTP relay refused or failed: {e}"))
    }
}
