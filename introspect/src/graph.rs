//! From a [`Snapshot`] to what people look at: the kind-level [`Graph`]
//! (10,000 CSAs are one node with a count), the [`Instances`] of one kind
//! as a top-N table, and `graph.dot`.
//!
//! A [`View`] is one snapshot with everything derived from it, made once
//! and shared by every request it answers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axon::{Direction, RunState, Snapshot};
use serde::Serialize;

/// A quick hasher for [`View::own`] and the maps behind the graph, keyed
/// by ids and names we made ourselves (never by what a client sends): a
/// multiply per word, the mixed high bits rotated down.
#[derive(Debug, Default, Clone, Copy)]
pub struct QuickHasher(u64);

impl std::hash::Hasher for QuickHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.write_u64(u64::from_le_bytes(b));
        }
        for &b in words.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type Quick = std::hash::BuildHasherDefault<QuickHasher>;
type QuickMap<K, V> = HashMap<K, V, Quick>;
type QuickSet<K> = HashSet<K, Quick>;

/// The suffix of a kind's node id when its components are the
/// introspection server's own (see [`Graph`]).
pub const OWN_SUFFIX: &str = "@introspect";

/// One snapshot, with the components that are introspection's own and the
/// kind-level graph, made once and shared.
#[derive(Debug)]
pub struct View {
    /// The snapshot everything here comes from.
    pub snapshot: Arc<Snapshot>,
    /// The ids of the introspection server's own components.
    pub own: HashSet<u64, std::hash::BuildHasherDefault<QuickHasher>>,
    /// The kind-level graph.
    pub graph: Graph,
    /// When the snapshot arrived.
    pub at: Instant,
}

impl View {
    /// Derives the graph from `snapshot`; `roots` and all their descendants
    /// (A7's children, transitively) are tagged as introspection's own.
    pub fn new(snapshot: Arc<Snapshot>, roots: &[u64]) -> View {
        let own = descendants(&snapshot, roots);
        let graph = Graph::new(&snapshot, &own);
        View {
            snapshot,
            own,
            graph,
            at: Instant::now(),
        }
    }

    /// The node id of a component's kind (see [`Graph`]).
    fn node_id(&self, kind: &str, id: u64) -> String {
        node_id(kind, self.own.contains(&id))
    }

    /// The instances of the kind whose node id is `kind`, sorted by `sort`
    /// (largest first for counts, smallest first for ids and names), at
    /// most `n` of them.
    pub fn instances(&self, kind: &str, sort: SortBy, n: usize) -> Instances {
        let snap = &self.snapshot;
        let mut rows: Vec<Instance> = snap
            .components
            .iter()
            .filter(|c| self.node_id(c.kind, c.id) == kind)
            .map(|c| {
                let inboxes = c.boxes.iter().filter(|b| b.direction == Direction::Inbox);
                Instance {
                    id: c.id,
                    name: c.name.to_string(),
                    state: c.state.as_str(),
                    parent: c.parent,
                    children: c.children.len(),
                    queued: inboxes.clone().map(|b| b.len).sum(),
                    delivered: inboxes.clone().map(|b| b.delivered).sum(),
                    high_water: inboxes.map(|b| b.high_water).max().unwrap_or(0),
                    counters: c.counters.iter().map(|k| (k.name, k.value)).collect(),
                    boxes: c
                        .boxes
                        .iter()
                        .map(|b| BoxRow {
                            name: b.name.to_string(),
                            direction: direction(b.direction),
                            len: b.len,
                            limit: b.limit,
                            high_water: b.high_water,
                            delivered: b.delivered,
                        })
                        .collect(),
                    neighbours: Vec::new(),
                }
            })
            .collect();
        let total = rows.len();
        match sort {
            SortBy::Id => rows.sort_by_key(|r| r.id),
            SortBy::Name => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
            SortBy::State => rows.sort_by(|a, b| a.state.cmp(b.state).then(a.id.cmp(&b.id))),
            SortBy::Queued => rows.sort_by(|a, b| b.queued.cmp(&a.queued).then(a.id.cmp(&b.id))),
            SortBy::Delivered => {
                rows.sort_by(|a, b| b.delivered.cmp(&a.delivered).then(a.id.cmp(&b.id)))
            }
            SortBy::HighWater => {
                rows.sort_by(|a, b| b.high_water.cmp(&a.high_water).then(a.id.cmp(&b.id)))
            }
            SortBy::Children => {
                rows.sort_by(|a, b| b.children.cmp(&a.children).then(a.id.cmp(&b.id)))
            }
            SortBy::BytesIn | SortBy::BytesOut => {
                let name = sort.as_str();
                let of = |r: &Instance| r.counters.get(name).copied().unwrap_or(0);
                rows.sort_by(|a, b| of(b).cmp(&of(a)).then(a.id.cmp(&b.id)))
            }
        }
        rows.truncate(n);
        // Each instance's neighbours: one pass over the linkages.
        let at: HashMap<u64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        let kinds: HashMap<u64, &'static str> =
            snap.components.iter().map(|c| (c.id, c.kind)).collect();
        let peer_kind = |id: Option<u64>| {
            id.and_then(|id| kinds.get(&id).map(|k| self.node_id(k, id)))
                .unwrap_or_else(|| "?".into())
        };
        for l in &snap.linkages {
            if let Some(&i) = at.get(&l.src) {
                rows[i].neighbours.push(Neighbour {
                    way: "out",
                    box_name: l.src_box.to_string(),
                    peer: l.dst,
                    peer_kind: peer_kind(l.dst),
                    peer_box: l.dst_box.to_string(),
                });
            }
            if let Some(&i) = l.dst.and_then(|d| at.get(&d)) {
                rows[i].neighbours.push(Neighbour {
                    way: "in",
                    box_name: l.dst_box.to_string(),
                    peer: Some(l.src),
                    peer_kind: peer_kind(Some(l.src)),
                    peer_box: l.src_box.to_string(),
                });
            }
        }
        Instances {
            kind: kind.to_owned(),
            total,
            sort: sort.as_str(),
            rows,
        }
    }
}

/// `roots` and everything below them in the parent/child tree.
fn descendants(snap: &Snapshot, roots: &[u64]) -> QuickSet<u64> {
    let children: QuickMap<u64, &[u64]> = snap
        .components
        .iter()
        .map(|c| (c.id, c.children.as_slice()))
        .collect();
    let mut own: QuickSet<u64> = QuickSet::default();
    let mut todo: Vec<u64> = roots.to_vec();
    while let Some(id) = todo.pop() {
        if own.insert(id) {
            todo.extend(children.get(&id).copied().unwrap_or_default());
        }
    }
    // A child is listed under its parent; one whose parent forgot it is
    // still found by its own parent link.
    let mut grew = true;
    while grew {
        grew = false;
        for c in &snap.components {
            if !own.contains(&c.id) && c.parent.is_some_and(|p| own.contains(&p)) {
                own.insert(c.id);
                grew = true;
            }
        }
    }
    own
}

fn node_id(kind: &str, own: bool) -> String {
    if own {
        format!("{kind}{OWN_SUFFIX}")
    } else {
        kind.to_owned()
    }
}

fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbox => "inbox",
        Direction::Outbox => "outbox",
    }
}

/// The kind-level graph: one node per component kind (the introspection
/// server's own components are nodes of their own, their ids ending in
/// [`OWN_SUFFIX`], with `own: true`), one edge per kind-to-kind linkage.
/// Serialised, it is `graph.json`.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// Components listed.
    pub components: usize,
    /// Threaded components running (counted, not listed).
    pub threaded: usize,
    /// Microseconds the scheduler spent taking the snapshot.
    pub took_us: u64,
    /// The nodes, most instances first.
    pub kinds: Vec<KindNode>,
    /// The edges.
    pub links: Vec<KindLink>,
}

/// All the components of one kind, as one node.
#[derive(Debug, Serialize)]
pub struct KindNode {
    /// The node's id: the kind, with [`OWN_SUFFIX`] for introspection's own.
    pub id: String,
    /// The kind (the component type's name).
    pub kind: String,
    /// True for the introspection server's own components.
    pub own: bool,
    /// How many there are.
    pub count: usize,
    /// How many are runnable.
    pub running: usize,
    /// How many are paused.
    pub paused: usize,
    /// How many have finished and are still held.
    pub done: usize,
    /// Their boxes, summed over the instances.
    pub boxes: Vec<KindBox>,
    /// The counters they report of their own
    /// ([`Component::counters`](axon::Component::counters): a CSA's
    /// `bytes_in` and `bytes_out`), summed over the instances.
    pub counters: BTreeMap<&'static str, u64>,
}

/// One box of a kind, over all its instances.
#[derive(Debug, Serialize)]
pub struct KindBox {
    /// The box's name.
    pub name: String,
    /// `"inbox"` or `"outbox"`.
    pub direction: &'static str,
    /// Messages waiting, summed.
    pub len: usize,
    /// The largest size limit (A5) among the instances; `null` if any is
    /// unbounded.
    pub limit: Option<usize>,
    /// The highest high-water mark of any instance.
    pub high_water: usize,
    /// Messages delivered, summed.
    pub delivered: u64,
}

/// Linkages from one kind's box to another's, counted.
#[derive(Debug, Serialize)]
pub struct KindLink {
    /// The source node's id.
    pub src: String,
    /// The source box.
    pub src_box: String,
    /// The source box's direction: `"outbox"`, or `"inbox"` for an inbox
    /// passing through to a child's.
    pub src_direction: &'static str,
    /// The destination node's id.
    pub dst: String,
    /// The destination box.
    pub dst_box: String,
    /// The destination box's direction: `"inbox"`, or `"outbox"` for a
    /// child's outbox passing through to its parent's.
    pub dst_direction: &'static str,
    /// How many such linkages there are.
    pub count: usize,
    /// True for passthroughs (inbox → inbox, outbox → outbox).
    pub passthrough: bool,
}

impl Graph {
    /// Aggregates `snap` by kind; `own` are the introspection server's.
    pub fn new<S: std::hash::BuildHasher>(snap: &Snapshot, own: &HashSet<u64, S>) -> Graph {
        let mut nodes: Vec<KindNode> = Vec::new();
        let mut node_at: QuickMap<(&str, bool), usize> = QuickMap::default();
        let mut box_at: Vec<QuickMap<&str, usize>> = Vec::new();
        let mut node_of: QuickMap<u64, usize> = QuickMap::default();
        node_of.reserve(snap.components.len());
        for c in &snap.components {
            let is_own = own.contains(&c.id);
            let n = *node_at.entry((c.kind, is_own)).or_insert_with(|| {
                nodes.push(KindNode {
                    id: node_id(c.kind, is_own),
                    kind: c.kind.to_owned(),
                    own: is_own,
                    count: 0,
                    running: 0,
                    paused: 0,
                    done: 0,
                    boxes: Vec::new(),
                    counters: BTreeMap::new(),
                });
                box_at.push(QuickMap::default());
                nodes.len() - 1
            });
            node_of.insert(c.id, n);
            let node = &mut nodes[n];
            node.count += 1;
            match c.state {
                RunState::Running => node.running += 1,
                RunState::Paused => node.paused += 1,
                RunState::Done => node.done += 1,
            }
            for k in &c.counters {
                *node.counters.entry(k.name).or_insert(0) += k.value;
            }
            let first = node.count == 1;
            // Instances of a kind nearly always have the same boxes in the
            // same order: then each box's place is its index.
            let same_boxes = node.boxes.len() == c.boxes.len()
                && node
                    .boxes
                    .iter()
                    .zip(&c.boxes)
                    .all(|(k, b)| k.name == b.name);
            for (i, b) in c.boxes.iter().enumerate() {
                let at = if same_boxes {
                    i
                } else {
                    *box_at[n].entry(b.name.as_ref()).or_insert_with(|| {
                        node.boxes.push(KindBox {
                            name: b.name.to_string(),
                            direction: direction(b.direction),
                            len: 0,
                            limit: b.limit,
                            high_water: 0,
                            delivered: 0,
                        });
                        node.boxes.len() - 1
                    })
                };
                let kb = &mut node.boxes[at];
                kb.len += b.len;
                kb.high_water = kb.high_water.max(b.high_water);
                kb.delivered += b.delivered;
                if !first {
                    kb.limit = match (kb.limit, b.limit) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
            }
        }
        let mut links: Vec<KindLink> = Vec::new();
        let mut link_at: QuickMap<(usize, &str, usize, &str), usize> = QuickMap::default();
        for l in &snap.linkages {
            let (Some(&s), Some(&d)) = (node_of.get(&l.src), l.dst.and_then(|d| node_of.get(&d)))
            else {
                continue;
            };
            let key = (s, l.src_box.as_ref(), d, l.dst_box.as_ref());
            match link_at.get(&key) {
                Some(&i) => links[i].count += 1,
                None => {
                    let dir = |n: usize, name: &str| {
                        nodes[n]
                            .boxes
                            .iter()
                            .find(|b| b.name == name)
                            .map_or("?", |b| b.direction)
                    };
                    link_at.insert(key, links.len());
                    links.push(KindLink {
                        src: nodes[s].id.clone(),
                        src_box: l.src_box.to_string(),
                        src_direction: dir(s, &l.src_box),
                        dst: nodes[d].id.clone(),
                        dst_box: l.dst_box.to_string(),
                        dst_direction: dir(d, &l.dst_box),
                        count: 1,
                        passthrough: l.passthrough,
                    });
                }
            }
        }
        nodes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.id.cmp(&b.id)));
        Graph {
            components: snap.components.len(),
            threaded: snap.threaded,
            took_us: u64::try_from(snap.took.as_micros()).unwrap_or(u64::MAX),
            kinds: nodes,
            links,
        }
    }

    /// `graph.json`.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// `graph.dot`: each kind a record node whose ports are its boxes
    /// (inboxes on the left, outboxes on the right), each edge a linkage
    /// labelled with its count. `hide_own` leaves out the introspection
    /// server's own components.
    pub fn to_dot(&self, hide_own: bool) -> String {
        let mut out = String::from(
            "digraph axon {\n  rankdir=LR;\n  node [shape=record, fontname=\"monospace\"];\n",
        );
        let shown = |id: &str| !hide_own || !id.ends_with(OWN_SUFFIX);
        for n in self.kinds.iter().filter(|n| shown(&n.id)) {
            let ports = |dir: &str| {
                n.boxes
                    .iter()
                    .filter(|b| b.direction == dir)
                    .map(|b| format!("<{}> {}", port(dir, &b.name), dot_label(&b.name)))
                    .collect::<Vec<_>>()
                    .join("|")
            };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{{{{{}}}|{} ({})|{{{}}}}}\"];",
                dot_id(&n.id),
                ports("inbox"),
                dot_label(&n.id),
                n.count,
                ports("outbox"),
            );
        }
        for l in self.links.iter().filter(|l| shown(&l.src) && shown(&l.dst)) {
            let _ = writeln!(
                out,
                "  \"{}\":{} -> \"{}\":{} [label=\"{}\"{}];",
                dot_id(&l.src),
                port(l.src_direction, &l.src_box),
                dot_id(&l.dst),
                port(l.dst_direction, &l.dst_box),
                l.count,
                if l.passthrough { ", style=dashed" } else { "" },
            );
        }
        out.push_str("}\n");
        out
    }
}

/// A record port's id: `i_`/`o_` and the box name with anything but
/// letters, digits and `_` replaced.
fn port(dir: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let side = if dir == "inbox" { "i" } else { "o" };
    format!("{side}_{clean}")
}

/// Text inside a record label: the record syntax's characters escaped.
fn dot_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '{' | '}' | '|' | '<' | '>' | '"' | '\\' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A quoted DOT id's contents.
fn dot_id(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The columns [`View::instances`] sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    /// Component id, ascending.
    Id,
    /// Name, ascending.
    Name,
    /// State (`done`, `paused`, `running`).
    State,
    /// Messages waiting in its inboxes, largest first.
    Queued,
    /// Messages delivered to its inboxes, largest first.
    Delivered,
    /// Highest high-water mark of its inboxes, largest first.
    HighWater,
    /// Number of children, largest first.
    Children,
    /// The `bytes_in` counter (a CSA's bytes read), largest first.
    BytesIn,
    /// The `bytes_out` counter (a CSA's bytes written), largest first.
    BytesOut,
}

impl SortBy {
    /// The column called `name` (`id`, `name`, `state`, `queued`,
    /// `delivered`, `high_water`, `children`, `bytes_in`, `bytes_out`).
    pub fn parse(name: &str) -> Option<SortBy> {
        Some(match name {
            "id" => SortBy::Id,
            "name" => SortBy::Name,
            "state" => SortBy::State,
            "queued" | "len" => SortBy::Queued,
            "delivered" => SortBy::Delivered,
            "high_water" => SortBy::HighWater,
            "children" => SortBy::Children,
            "bytes_in" => SortBy::BytesIn,
            "bytes_out" => SortBy::BytesOut,
            _ => return None,
        })
    }

    /// The column's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::Name => "name",
            SortBy::State => "state",
            SortBy::Queued => "queued",
            SortBy::Delivered => "delivered",
            SortBy::HighWater => "high_water",
            SortBy::Children => "children",
            SortBy::BytesIn => "bytes_in",
            SortBy::BytesOut => "bytes_out",
        }
    }
}

/// The top-N instances of one kind (`/instances`).
#[derive(Debug, Serialize)]
pub struct Instances {
    /// The node id asked for.
    pub kind: String,
    /// How many instances the kind has (the table holds at most N).
    pub total: usize,
    /// The column sorted by.
    pub sort: &'static str,
    /// The instances.
    pub rows: Vec<Instance>,
}

/// One component in an [`Instances`] table.
#[derive(Debug, Serialize)]
pub struct Instance {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// `running`, `paused` or `done`.
    pub state: &'static str,
    /// Its parent's id.
    pub parent: Option<u64>,
    /// How many children it has.
    pub children: usize,
    /// Messages waiting in its inboxes.
    pub queued: usize,
    /// Messages delivered to its inboxes.
    pub delivered: u64,
    /// The highest high-water mark of its inboxes.
    pub high_water: usize,
    /// The counters it reports of its own (a CSA's `bytes_in` and
    /// `bytes_out`).
    pub counters: BTreeMap<&'static str, u64>,
    /// Each box.
    pub boxes: Vec<BoxRow>,
    /// The components its boxes are linked with, either way.
    pub neighbours: Vec<Neighbour>,
}

/// One box of an [`Instance`].
#[derive(Debug, Serialize)]
pub struct BoxRow {
    /// Its name.
    pub name: String,
    /// `"inbox"` or `"outbox"`.
    pub direction: &'static str,
    /// Messages waiting.
    pub len: usize,
    /// A5's limit, `null` for none.
    pub limit: Option<usize>,
    /// The high-water mark.
    pub high_water: usize,
    /// Messages delivered.
    pub delivered: u64,
}

/// A linkage between an [`Instance`] and another component.
#[derive(Debug, Serialize)]
pub struct Neighbour {
    /// `"out"`: from this instance's box; `"in"`: into it.
    pub way: &'static str,
    /// This instance's box.
    #[serde(rename = "box")]
    pub box_name: String,
    /// The other component's id (`null`: not on this scheduler).
    pub peer: Option<u64>,
    /// The other component's node id.
    pub peer_kind: String,
    /// The other component's box.
    pub peer_box: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axon::{BoxSnapshot, ComponentInfo, Counter, LinkInfo};
    use std::borrow::Cow;

    fn component(id: u64, kind: &'static str, counters: &[(&'static str, u64)]) -> ComponentInfo {
        let boxed = |name: &'static str, direction, delivered| BoxSnapshot {
            name: name.into(),
            direction,
            len: 0,
            limit: None,
            high_water: 0,
            delivered,
        };
        ComponentInfo {
            id,
            name: kind.into(),
            kind,
            type_name: kind,
            state: RunState::Paused,
            parent: None,
            children: Vec::new(),
            boxes: vec![
                boxed("inbox", Direction::Inbox, id),
                boxed("outbox", Direction::Outbox, 0),
            ],
            counters: counters
                .iter()
                .map(|&(name, value)| Counter { name, value })
                .collect(),
        }
    }

    fn link(src: u64, src_box: Cow<'static, str>, dst: u64) -> LinkInfo {
        LinkInfo {
            src,
            src_box,
            dst: Some(dst),
            dst_box: "inbox".into(),
            passthrough: false,
        }
    }

    /// The kind-level graph sums by kind however the components come:
    /// more kinds interleaved than the graph remembers at once, an own
    /// component of a shared kind, counters in another order or new, and
    /// box names that are the same text at other addresses (one linkage)
    /// or a shorter text at the same address (another).
    #[test]
    fn the_graph_sums_each_kind_whatever_the_order() {
        let order = ["A", "B", "C", "D", "E", "A", "B", "A"];
        let mut components: Vec<ComponentInfo> = order
            .iter()
            .enumerate()
            .map(|(i, &k)| component(i as u64 + 1, k, &[]))
            .collect();
        components[0].counters = component(0, "A", &[("x", 1), ("y", 2)]).counters;
        components[5].counters = component(0, "A", &[("x", 10), ("y", 20)]).counters;
        components[7].counters = component(0, "A", &[("z", 5), ("y", 100), ("x", 1000)]).counters;
        components.push(component(9, "A", &[("x", 4)]));
        let outer: &'static str = "outboxer";
        let linkages = vec![
            link(1, Cow::Borrowed("outbox"), 2),
            link(6, Cow::Owned("outbox".to_string()), 7),
            link(8, Cow::Borrowed(&outer[..6]), 7),
            link(1, Cow::Borrowed(outer), 2),
            link(3, Cow::Borrowed("outbox"), 4),
        ];
        let snap = Snapshot {
            components,
            linkages,
            ..Snapshot::default()
        };
        let own: QuickSet<u64> = [9].into_iter().collect();
        let g = Graph::new(&snap, &own);
        let node = |id: &str| g.kinds.iter().find(|k| k.id == id).expect(id);
        let a = node("A");
        assert_eq!(a.count, 3);
        let want: BTreeMap<&str, u64> = [("x", 1011), ("y", 122), ("z", 5)].into();
        assert_eq!(a.counters, want);
        assert_eq!(a.boxes[0].delivered, 1 + 6 + 8);
        let mine = node(&format!("A{OWN_SUFFIX}"));
        assert_eq!((mine.count, mine.counters.get("x")), (1, Some(&4)));
        for (id, count) in [("B", 2), ("C", 1), ("D", 1), ("E", 1)] {
            assert_eq!(node(id).count, count, "{id}");
        }
        let links: Vec<(&str, &str, &str, usize)> = g
            .links
            .iter()
            .map(|l| (&*l.src, &*l.src_box, &*l.dst, l.count))
            .collect();
        assert_eq!(
            links,
            [
                ("A", "outbox", "B", 3),
                ("A", "outboxer", "B", 1),
                ("C", "outbox", "D", 1)
            ]
        );
    }
}
