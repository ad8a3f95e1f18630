//! Kamaelia's Introspector text protocol, so that Kamaelia's Axon
//! visualiser (`Kamaelia.Visualisation.Axon`) can draw us.
//!
//! Kamaelia's `Axon.Introspector` sends `DEL ALL` first, then, whenever
//! the topology changes, the changes as lines (deletions before additions,
//! links before nodes when deleting and after them when adding):
//!
//! ```text
//! ADD NODE "<id>" "<name>" randompos component
//! ADD NODE "<box id>" "<box name>" randompos inbox      (or outbox)
//! ADD LINK "<id1>" "<id2>"
//! DEL LINK "<id1>" "<id2>"
//! DEL NODE "<id>"
//! ```
//!
//! A component's id is its number; a box's is Python's rendering of the
//! tuple Kamaelia used, `(7, 'i', 'inbox')`. Each box is linked to its
//! component, and each linkage (passthroughs too) joins two boxes. Names
//! have `"` replaced with `'`, as the visualiser has no escape.
//!
//! Unlike Kamaelia's, which rescanned its scheduler every round, ours is
//! computed from a [`Snapshot`] at most once a second, and only while
//! somebody reads it (`/topology` on the introspection server).
//!
//! ```
//! use introspect::kamaelia::Topology;
//! let empty = Topology::default();
//! assert_eq!(empty.changes_from(&Topology::default()), "");
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use axon::{Direction, Snapshot};

/// The nodes and links of a system as Kamaelia's visualiser sees them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Node id → its `ADD NODE` line's tail (name and type).
    nodes: BTreeMap<String, String>,
    /// Directed links between node ids.
    links: BTreeSet<(String, String)>,
}

fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace(['"', '\n', '\r'], "'"))
}

fn box_id(component: u64, direction: Direction, name: &str) -> String {
    let io = match direction {
        Direction::Inbox => 'i',
        Direction::Outbox => 'o',
    };
    format!("({component}, '{io}', '{name}')")
}

impl Topology {
    /// The topology of `snap`, leaving out the components in `skip` (the
    /// introspection server's own, say) and their boxes and links.
    pub fn of<S: std::hash::BuildHasher>(snap: &Snapshot, skip: &HashSet<u64, S>) -> Topology {
        let mut t = Topology::default();
        let mut dirs = std::collections::HashMap::new();
        for c in snap.components.iter().filter(|c| !skip.contains(&c.id)) {
            let id = c.id.to_string();
            t.nodes.insert(
                id.clone(),
                format!("{} randompos component", quoted(&c.name)),
            );
            for b in &c.boxes {
                let bid = box_id(c.id, b.direction, &b.name);
                let kind = match b.direction {
                    Direction::Inbox => "inbox",
                    Direction::Outbox => "outbox",
                };
                dirs.insert((c.id, b.name.as_ref()), b.direction);
                t.nodes
                    .insert(bid.clone(), format!("{} randompos {kind}", quoted(&b.name)));
                t.links.insert((id.clone(), bid));
            }
        }
        for l in &snap.linkages {
            let Some(dst) = l.dst else { continue };
            let (Some(&sd), Some(&dd)) = (
                dirs.get(&(l.src, l.src_box.as_ref())),
                dirs.get(&(dst, l.dst_box.as_ref())),
            ) else {
                continue; // an end left out, or not on this scheduler
            };
            t.links
                .insert((box_id(l.src, sd, &l.src_box), box_id(dst, dd, &l.dst_box)));
        }
        t
    }

    /// The lines that turn `old` into `self`, in Kamaelia's order: links
    /// deleted, nodes deleted, nodes added, links added. Empty when
    /// nothing changed.
    pub fn changes_from(&self, old: &Topology) -> String {
        let mut out = String::new();
        for (a, b) in old.links.difference(&self.links) {
            let _ = writeln!(out, "DEL LINK {} {}", quoted(a), quoted(b));
        }
        for id in old.nodes.keys().filter(|id| !self.nodes.contains_key(*id)) {
            let _ = writeln!(out, "DEL NODE {}", quoted(id));
        }
        for (id, tail) in &self.nodes {
            if old.nodes.get(id) != Some(tail) {
                let _ = writeln!(out, "ADD NODE {} {tail}", quoted(id));
            }
        }
        for (a, b) in self.links.difference(&old.links) {
            let _ = writeln!(out, "ADD LINK {} {}", quoted(a), quoted(b));
        }
        out
    }

    /// Everything from nothing, as a new visualiser should first hear it:
    /// `DEL ALL`, then every node and link.
    pub fn from_scratch(&self) -> String {
        let mut out = String::from("DEL ALL\n");
        out.push_str(&self.changes_from(&Topology::default()));
        out
    }

    /// Number of nodes (components and boxes).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axon::{BoxSnapshot, ComponentInfo, LinkInfo, RunState};
    use std::borrow::Cow;

    fn component(id: u64, name: &'static str) -> ComponentInfo {
        let b = |name: &'static str, direction| BoxSnapshot {
            name: Cow::Borrowed(name),
            direction,
            len: 0,
            limit: None,
            high_water: 0,
            delivered: 0,
        };
        ComponentInfo {
            id,
            name: Cow::Borrowed(name),
            kind: name,
            type_name: name,
            state: RunState::Paused,
            parent: None,
            children: Vec::new(),
            boxes: vec![b("inbox", Direction::Inbox), b("outbox", Direction::Outbox)],
            counters: Vec::new(),
        }
    }

    fn two_linked() -> Snapshot {
        Snapshot {
            components: vec![component(1, "Producer"), component(2, "Consumer")],
            linkages: vec![LinkInfo {
                src: 1,
                src_box: "outbox".into(),
                dst: Some(2),
                dst_box: "inbox".into(),
                passthrough: false,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_topology_from_scratch_is_kamaelias_lines() {
        let t = Topology::of(&two_linked(), &HashSet::new());
        let text = t.from_scratch();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "DEL ALL");
        assert!(lines.contains(&r#"ADD NODE "1" "Producer" randompos component"#));
        assert!(lines.contains(&r#"ADD NODE "(1, 'o', 'outbox')" "outbox" randompos outbox"#));
        assert!(lines.contains(&r#"ADD LINK "1" "(1, 'o', 'outbox')""#));
        assert!(lines.contains(&r#"ADD LINK "(1, 'o', 'outbox')" "(2, 'i', 'inbox')""#));
        // Nodes come before the links that join them.
        let first_link = lines
            .iter()
            .position(|l| l.starts_with("ADD LINK"))
            .unwrap();
        assert!(lines[first_link..]
            .iter()
            .all(|l| l.starts_with("ADD LINK")));
    }

    #[test]
    fn changes_delete_links_before_nodes() {
        let before = Topology::of(&two_linked(), &HashSet::new());
        let mut snap = two_linked();
        snap.components.pop();
        snap.linkages.clear();
        let after = Topology::of(&snap, &HashSet::new());
        let text = after.changes_from(&before);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"DEL LINK "(1, 'o', 'outbox')" "(2, 'i', 'inbox')""#
        );
        assert!(lines.contains(&r#"DEL NODE "2""#));
        assert!(lines.iter().all(|l| l.starts_with("DEL")));
        assert_eq!(after.changes_from(&after), "");
    }

    #[test]
    fn skipped_components_and_their_links_are_left_out() {
        let t = Topology::of(&two_linked(), &HashSet::from([2]));
        let text = t.from_scratch();
        assert!(!text.contains("Consumer"));
        assert!(!text.contains("(2, 'i', 'inbox')"));
        assert_eq!(t.node_count(), 3);
    }
}
