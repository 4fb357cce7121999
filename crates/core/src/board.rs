//! The collections of a stage that works on several at once, as a board:
//! which are in flight and how many are done. Each start and end sends
//! [`Event::Collections`] (the CLI's `12/300 collections flushed (now: …)`
//! line); a start also sends [`Event::CollectionStarted`]. The end of a
//! collection's whole work ([`Event::CollectionFinished`]) stays with the
//! operation: a create's collection is flushed long before its files are
//! copied.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::events::{Event, EventSink};

/// In flight and done, for one stage.
pub struct Board<'a> {
    events: &'a dyn EventSink,
    names: Vec<String>,
    verb: &'static str,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    done: usize,
    current: BTreeSet<usize>,
}

impl<'a> Board<'a> {
    /// A board of `names` (in plan order); `verb` says what done means.
    pub fn new(events: &'a dyn EventSink, names: Vec<String>, verb: &'static str) -> Board<'a> {
        Board {
            events,
            names,
            verb,
            state: Mutex::new(State::default()),
        }
    }

    /// Collection `index` is taken up.
    pub fn start(&self, index: usize) {
        self.events.emit(Event::CollectionStarted { index });
        let mut s = self.state.lock().expect("board");
        s.current.insert(index);
        self.send(&s);
    }

    /// Collection `index` is through this stage (or was skipped).
    pub fn finish(&self, index: usize) {
        let mut s = self.state.lock().expect("board");
        s.current.remove(&index);
        s.done += 1;
        self.send(&s);
    }

    /// Sent under the lock, so the counts arrive in order.
    fn send(&self, s: &State) {
        let current = s.current.iter().map(|i| self.names[*i].clone()).collect();
        self.events.emit(Event::Collections {
            verb: self.verb,
            done: s.done,
            of: self.names.len(),
            current,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Collect;

    #[test]
    fn counts_rise_and_name_the_collections_in_flight_in_plan_order() {
        let events = Collect::default();
        let board = Board::new(&events, vec!["a".into(), "b".into(), "c".into()], "flushed");
        board.start(2);
        board.start(0);
        board.finish(2);
        board.start(1);
        let last = events.events().pop().unwrap();
        assert_eq!(
            last,
            Event::Collections {
                verb: "flushed",
                done: 1,
                of: 3,
                current: vec!["a".into(), "b".into()],
            }
        );
        board.finish(0);
        board.finish(1);
        let dones: Vec<usize> = (events.events().iter())
            .filter_map(|e| match e {
                Event::Collections { done, .. } => Some(*done),
                _ => None,
            })
            .collect();
        assert_eq!(dones, vec![0, 0, 1, 1, 2, 3]);
    }
}
