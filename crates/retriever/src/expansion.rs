//! Adjacent-chunk expansion: the chunks just before and after each hit in its document, as
//! context beside the hit (not as hits of their own). Pure bookkeeping, unit-tested; the
//! lookup itself is one exact read of the keyword index by point id.
//!
//! Rules: at most `n` chunks on each side of a hit; only chunks of the hit's document
//! version (point ids derive from (document, version, chunk index), so the ids say exactly
//! which chunks to read); a chunk that is a hit itself is never added as a neighbour; a
//! chunk next to two hits is added once, beside the better one; each side is in document
//! order.

use std::collections::{HashMap, HashSet};

use rag_core::{ChunkRecord, point_id};
use uuid::Uuid;

/// The point ids of the chunks within `n` positions of each hit (not the hits themselves),
/// each once, in the order the hits come.
pub fn wanted(hits: &[&ChunkRecord], n: u32) -> Vec<Uuid> {
    let own: HashSet<Uuid> = hits.iter().map(|h| h.id).collect();
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for hit in hits {
        for index in around(hit.chunk_index, n) {
            let id = point_id(hit.document_id, hit.version, index);
            if !own.contains(&id) && seen.insert(id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// The chunk indexes within `n` of `index`, itself excluded, in document order.
fn around(index: u32, n: u32) -> impl Iterator<Item = u32> {
    let first = index.saturating_sub(n);
    let last = index.saturating_add(n);
    (first..=last).filter(move |&i| i != index)
}

/// The neighbours of one hit, each side in document order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Neighbours {
    pub before: Vec<ChunkRecord>,
    pub after: Vec<ChunkRecord>,
}

/// Places the `found` chunks beside the hits (best hit first): each chunk once, beside the
/// first hit it neighbours, never when it is a hit itself. One entry per hit.
pub fn attach(hits: &[&ChunkRecord], found: Vec<ChunkRecord>, n: u32) -> Vec<Neighbours> {
    let mut found: HashMap<Uuid, ChunkRecord> = found.into_iter().map(|c| (c.id, c)).collect();
    for hit in hits {
        found.remove(&hit.id);
    }
    hits.iter()
        .map(|hit| {
            let mut neighbours = Neighbours::default();
            for index in around(hit.chunk_index, n) {
                let id = point_id(hit.document_id, hit.version, index);
                // Taking it out of `found` is what keeps it from a later hit.
                let Some(chunk) = found.remove(&id) else {
                    continue;
                };
                if index < hit.chunk_index {
                    neighbours.before.push(chunk);
                } else {
                    neighbours.after.push(chunk);
                }
            }
            neighbours
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rag_core::DocumentId;

    fn chunk(file: &str, version: u64, index: u32) -> ChunkRecord {
        let document_id = DocumentId::for_source("acme", "hr", file);
        ChunkRecord {
            id: point_id(document_id, version, index),
            document_id,
            version,
            chunk_index: index,
            text: format!("{file} v{version} #{index}"),
            title: file.into(),
            domain: "hr".into(),
            tenant: "acme".into(),
            section: String::new(),
            page: None,
            char_start: 0,
            char_end: 0,
            object_key: String::new(),
        }
    }

    /// Chunks 0..count of `file` version 1: what the index holds.
    fn document(file: &str, count: u32) -> Vec<ChunkRecord> {
        (0..count).map(|i| chunk(file, 1, i)).collect()
    }

    fn indexes(chunks: &[ChunkRecord]) -> Vec<u32> {
        chunks.iter().map(|c| c.chunk_index).collect()
    }

    /// What the store would return for `wanted`.
    fn lookup(store: &[ChunkRecord], ids: &[Uuid]) -> Vec<ChunkRecord> {
        store
            .iter()
            .filter(|c| ids.contains(&c.id))
            .cloned()
            .collect()
    }

    #[test]
    fn neighbours_are_in_document_order_beside_their_hit_and_bounded() {
        let store = document("a.md", 10);
        let hit = &store[5];
        for n in 0..4 {
            let ids = wanted(&[hit], n);
            assert_eq!(ids.len(), 2 * n as usize);
            let attached = attach(&[hit], lookup(&store, &ids), n);
            let low = 5 - n;
            assert_eq!(indexes(&attached[0].before), (low..5).collect::<Vec<_>>());
            assert_eq!(indexes(&attached[0].after), (6..=5 + n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_ends_of_a_document_have_neighbours_on_one_side() {
        let store = document("a.md", 3);
        let (first, last) = (&store[0], &store[2]);
        let attached = attach(
            &[first, last],
            lookup(&store, &wanted(&[first, last], 2)),
            2,
        );
        assert!(attached[0].before.is_empty());
        // Chunk 1 neighbours both hits: it goes beside the better one (the first).
        assert_eq!(indexes(&attached[0].after), vec![1]);
        assert!(attached[1].before.is_empty() && attached[1].after.is_empty());
        // Index 0 does not underflow, and a huge index does not overflow.
        let edge = chunk("b.md", 1, u32::MAX);
        assert_eq!(wanted(&[&edge], 1).len(), 1);
    }

    #[test]
    fn hits_are_never_neighbours_and_shared_neighbours_appear_once() {
        let store = document("a.md", 10);
        let hits = [&store[4], &store[5], &store[8]];
        let ids = wanted(&hits, 1);
        // 3 and 6 around 4/5 (each other's neighbours are hits), 7 and 9 around 8.
        assert_eq!(ids.len(), 4);
        let attached = attach(&hits, lookup(&store, &ids), 1);
        assert_eq!(indexes(&attached[0].before), vec![3]);
        assert!(attached[0].after.is_empty());
        assert!(attached[1].before.is_empty());
        assert_eq!(indexes(&attached[1].after), vec![6]);
        assert_eq!(indexes(&attached[2].before), vec![7]);
        assert_eq!(indexes(&attached[2].after), vec![9]);
        // With n = 2, 6 is within reach of 4, 5 and 8, and 7 of 5 and 8: each goes beside
        // the best hit that reaches it.
        let attached = attach(&hits, lookup(&store, &wanted(&hits, 2)), 2);
        assert_eq!(indexes(&attached[0].before), vec![2, 3]);
        assert_eq!(indexes(&attached[0].after), vec![6]);
        assert!(attached[1].before.is_empty());
        assert_eq!(indexes(&attached[1].after), vec![7]);
        assert!(attached[2].before.is_empty());
        assert_eq!(indexes(&attached[2].after), vec![9]);
        let total: usize = attached
            .iter()
            .map(|a| a.before.len() + a.after.len())
            .sum();
        assert_eq!(total, 5, "2, 3, 6, 7, 9 once each");
    }

    #[test]
    fn only_the_hits_own_document_version_is_read() {
        let hit = chunk("a.md", 2, 3);
        let ids = wanted(&[&hit], 1);
        assert!(ids.contains(&point_id(hit.document_id, 2, 2)));
        assert!(!ids.contains(&point_id(hit.document_id, 1, 2)));
        // A chunk of another version or document handed in is not attached.
        let stray = vec![chunk("a.md", 1, 2), chunk("b.md", 2, 4)];
        let attached = attach(&[&hit], stray, 1);
        assert_eq!(attached, vec![Neighbours::default()]);
    }
}
