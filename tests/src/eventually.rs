//! Waiting for what happens in the background (a projector, a workflow, a
//! process), with a deadline: never a fixed sleep.
//!
//! ```ignore
//! let order = eventually("the unpaid order to be cancelled", READ_MODEL_PATIENCE, async || {
//!     let order = app.settled_order(&alice, unpaid).await;
//!     if order["status"] == "pending" { Err(order) } else { Ok(order) }
//! })
//! .await;
//! ```

use std::fmt::Display;
use std::time::Duration;

use tokio::time::Instant;

/// How often [`eventually`] asks again.
pub const POLL: Duration = Duration::from_millis(20);

/// What a check answers: done, with a value, or not yet.
pub trait Attempt {
    type Output;
    /// `Err`: not yet, with what was seen (for the message when time is up).
    fn done(self) -> Result<Self::Output, Option<String>>;
}

/// `Some`: done; `None`: not yet.
impl<T> Attempt for Option<T> {
    type Output = T;
    fn done(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

/// `true`: done; `false`: not yet.
impl Attempt for bool {
    type Output = ();
    fn done(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

/// `Ok`: done; `Err(seen)`: not yet, and the panic shows the last `seen`.
impl<T, E: Display> Attempt for Result<T, E> {
    type Output = T;
    fn done(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(seen.to_string()))
    }
}

/// Asks `check` every [`POLL`] until it is done and answers its value;
/// panics saying what was awaited (`what`, e.g. "the rebuild to finish")
/// once `within` has passed. `check` may assert on what it sees meanwhile.
pub async fn eventually<A: Attempt>(
    what: impl Display,
    within: Duration,
    check: impl AsyncFnMut() -> A,
) -> A::Output {
    eventually_every(POLL, what, within, check).await
}

/// [`eventually`], asking every `every`: more often to catch a moment that
/// passes quickly, less often when each question is costly.
pub async fn eventually_every<A: Attempt>(
    every: Duration,
    what: impl Display,
    within: Duration,
    mut check: impl AsyncFnMut() -> A,
) -> A::Output {
    let deadline = Instant::now() + within;
    loop {
        let seen = match check().await.done() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            match seen {
                Some(seen) => panic!("waited {within:?} for {what}; last seen: {seen}"),
                None => panic!("waited {within:?} for {what}"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_answers_the_value_once_the_check_is_done() {
        let mut asked = 0;
        let value = eventually("the third question", Duration::from_secs(5), async || {
            asked += 1;
            (asked == 3).then_some(asked * 10)
        })
        .await;
        assert_eq!(value, 30);
    }

    #[tokio::test]
    #[should_panic(expected = "for the impossible; last seen: still 7")]
    async fn it_says_what_was_awaited_and_what_it_last_saw_when_time_is_up() {
        eventually("the impossible", Duration::from_millis(50), async || {
            Err::<(), _>("still 7")
        })
        .await;
    }
}
