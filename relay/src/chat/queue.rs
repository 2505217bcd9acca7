//! Each sender's place in Twitch's chat rate limit.
//!
//! Twitch counts a user's chat messages over a sliding 30 s window: 20 per
//! window in channels where the user is a plain chatter, 100 where the user
//! is the broadcaster or a moderator (a user over the limit is locked out of
//! chat for 30 minutes). TAU does not know where a sender moderates, so it
//! allows 100 only for the broadcaster in their own channel and 20 for
//! everything else, per sender across channels.
//!
//! A message over the limit waits, in order, until the window admits it:
//! each message reserves its send time (never before an earlier message's),
//! so the wait is known up front. At most [`Limits::queue`] messages wait
//! per sender, and one more is refused at once ([`QueueFull`]) instead of
//! piling up behind a limit it cannot beat. A caller that gives up (socket
//! closed, request dropped) gives its reserved time back.

use std::{collections::VecDeque, sync::Mutex, time::Duration};

use tokio::time::Instant;

/// Twitch's chat limits, and how long a queue TAU keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages per window in the sender's own channel (broadcaster).
    pub own_channel: usize,
    /// Messages per window anywhere else.
    pub other_channel: usize,
    /// The sliding window.
    pub window: Duration,
    /// Messages that may wait for the window per sender.
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            own_channel: 100,
            other_channel: 20,
            window: Duration::from_secs(30),
            queue: 32,
        }
    }
}

/// The queue is full; the message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    /// How many were waiting.
    pub waiting: usize,
}

/// One sender's send times: past ones inside the window and reserved
/// future ones, in order.
#[derive(Debug, Default)]
pub struct SendQueue {
    times: Mutex<VecDeque<Instant>>,
}

/// A reserved send time, given back if its caller leaves before it.
struct Reservation<'a> {
    queue: &'a SendQueue,
    at: Instant,
    kept: bool,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        let mut times = self.queue.times.lock().expect("send queue lock");
        if let Some(i) = times.iter().rposition(|t| *t == self.at) {
            times.remove(i);
        }
    }
}

impl SendQueue {
    /// An empty queue.
    pub fn new() -> SendQueue {
        SendQueue::default()
    }

    /// Waits until the window admits one more message at `limit` per
    /// window, counting it as sent then; `Err` at once when `limits.queue`
    /// messages already wait.
    pub async fn admit(&self, limit: usize, limits: &Limits) -> Result<(), QueueFull> {
        let at = self.reserve(limit.max(1), limits)?;
        let mut reservation = Reservation {
            queue: self,
            at,
            kept: false,
        };
        tokio::time::sleep_until(at).await;
        reservation.kept = true;
        Ok(())
    }

    /// The earliest time the window admits a message after every message
    /// already reserved, reserved now.
    fn reserve(&self, limit: usize, limits: &Limits) -> Result<Instant, QueueFull> {
        let now = Instant::now();
        let mut times = self.times.lock().expect("send queue lock");
        while times.front().is_some_and(|&t| t + limits.window <= now) {
            times.pop_front();
        }
        let mut at = times.back().map_or(now, |&last| last.max(now));
        let in_window = times.iter().filter(|&&t| t + limits.window > at).count();
        if in_window >= limit {
            // The send whose expiry leaves room for one more.
            at = times[times.len() - limit] + limits.window;
        }
        let waiting = times.iter().filter(|&&t| t > now).count();
        if at > now && waiting >= limits.queue.max(1) {
            return Err(QueueFull { waiting });
        }
        times.push_back(at);
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn limits(queue: usize) -> Limits {
        Limits {
            own_channel: 3,
            other_channel: 2,
            window: Duration::from_secs(30),
            queue,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_admits_the_limit_then_waits_for_the_oldest_to_expire() {
        let queue = SendQueue::new();
        let limits = limits(8);
        let start = Instant::now();
        queue.admit(3, &limits).await.unwrap();
        tokio::time::advance(Duration::from_secs(10)).await;
        for _ in 0..2 {
            queue.admit(3, &limits).await.unwrap();
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(10),
            "three fit at once"
        );
        queue.admit(3, &limits).await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(30),
            "the oldest expired"
        );
        // The lower limit counts the same sends: 3 in the window (10 s, 10 s,
        // 30 s), 2 allowed: the second one sent at 10 s must expire first.
        queue.admit(2, &limits).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once_and_leavers_free_their_place() {
        let queue = Arc::new(SendQueue::new());
        let limits = limits(2);
        let start = Instant::now();
        let admit = |queue: &Arc<SendQueue>| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.admit(2, &limits).await.map(|()| start.elapsed()) })
        };
        // Sends the window admits at once never count as waiting.
        let now: Vec<_> = (0..2).map(|_| admit(&queue)).collect();
        let first = admit(&queue);
        let second = admit(&queue);
        tokio::task::yield_now().await;
        assert_eq!(
            queue.admit(2, &limits).await,
            Err(QueueFull { waiting: 2 }),
            "two wait: a third is refused"
        );
        second.abort();
        let _ = second.await;
        let third = admit(&queue);
        for task in now {
            assert_eq!(task.await.unwrap(), Ok(Duration::ZERO));
        }
        assert_eq!(first.await.unwrap(), Ok(Duration::from_secs(30)));
        assert_eq!(
            third.await.unwrap(),
            Ok(Duration::from_secs(30)),
            "took the place the second gave back"
        );
    }
}
