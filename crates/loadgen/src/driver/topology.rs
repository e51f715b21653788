//! Who can reach whom while a partition or an isolation is in force. Both drivers apply the
//! same [`Cuts`]: the simulator as cut links, the real driver by filtering each proposer's
//! traffic and by telling each node which peers to drop.

/// The links a partition cuts. Nodes are numbered from 1, proposers from 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// For each proposer, the nodes it can reach, sorted.
    reach: Vec<Vec<u32>>,
    /// Node pairs `(a, b)` with `a < b` that cannot reach each other.
    node_pairs: Vec<(u32, u32)>,
}

impl Cuts {
    /// `groups` of nodes: nodes reach the nodes they share a group with; proposer `i` reaches
    /// the nodes of group `i mod groups.len()`. A node in no group is cut off from everyone.
    pub fn partition(groups: &[Vec<u32>], nodes: u32, proposers: u32) -> Self {
        let reach = (0..proposers as usize)
            .map(|i| {
                let mut group = groups
                    .get(i % groups.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                group.sort_unstable();
                group.dedup();
                group
            })
            .collect();
        let together = |a: u32, b: u32| groups.iter().any(|g| g.contains(&a) && g.contains(&b));
        Self {
            reach,
            node_pairs: pairs(nodes, |a, b| !together(a, b)),
        }
    }

    /// `isolated` nodes cut off from the other nodes and from every proposer.
    pub fn isolate(isolated: &[u32], nodes: u32, proposers: u32) -> Self {
        let rest: Vec<u32> = (1..=nodes).filter(|n| !isolated.contains(n)).collect();
        Self {
            reach: vec![rest; proposers as usize],
            node_pairs: pairs(nodes, |a, b| isolated.contains(&a) != isolated.contains(&b)),
        }
    }

    /// Whether proposer `proposer` can reach node `node`.
    pub fn can_reach(&self, proposer: u32, node: u32) -> bool {
        self.reach
            .get(proposer as usize)
            .is_none_or(|nodes| nodes.binary_search(&node).is_ok())
    }

    /// The nodes `node` cannot reach.
    pub fn cut_from(&self, node: u32) -> Vec<u32> {
        self.node_pairs
            .iter()
            .filter_map(|&(a, b)| match () {
                () if a == node => Some(b),
                () if b == node => Some(a),
                () => None,
            })
            .collect()
    }

    /// Every cut node pair.
    pub fn node_pairs(&self) -> &[(u32, u32)] {
        &self.node_pairs
    }

    /// Every cut `(proposer, node)` pair.
    pub fn proposer_pairs(&self, nodes: u32) -> Vec<(u32, u32)> {
        (0..self.reach.len() as u32)
            .flat_map(|p| (1..=nodes).map(move |n| (p, n)))
            .filter(|&(p, n)| !self.can_reach(p, n))
            .collect()
    }
}

fn pairs(nodes: u32, cut: impl Fn(u32, u32) -> bool) -> Vec<(u32, u32)> {
    (1..=nodes)
        .flat_map(|a| (a + 1..=nodes).map(move |b| (a, b)))
        .filter(|&(a, b)| cut(a, b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_split_nodes_and_proposers() {
        let cuts = Cuts::partition(&[vec![1, 2], vec![3]], 3, 4);
        assert_eq!(cuts.node_pairs(), &[(1, 3), (2, 3)]);
        assert!(cuts.can_reach(0, 1) && cuts.can_reach(0, 2) && !cuts.can_reach(0, 3));
        assert!(cuts.can_reach(1, 3) && !cuts.can_reach(1, 1));
        assert_eq!(cuts.cut_from(3), vec![1, 2]);
        // Proposers 0 and 2 lose node 3; proposers 1 and 3 lose nodes 1 and 2.
        assert_eq!(cuts.proposer_pairs(3).len(), 2 + 2 * 2);
    }

    #[test]
    fn the_majority_ring_gives_every_proposer_a_different_majority() {
        let ring: Vec<Vec<u32>> = (0..5u32)
            .map(|i| (0..3).map(|k| (i + k) % 5 + 1).collect())
            .collect();
        let cuts = Cuts::partition(&ring, 5, 5);
        let seen: Vec<Vec<u32>> = (0..5)
            .map(|p| (1..=5).filter(|n| cuts.can_reach(p, *n)).collect())
            .collect();
        for (i, nodes) in seen.iter().enumerate() {
            assert_eq!(nodes.len(), 3, "proposer {i} sees a majority");
            assert!(seen.iter().filter(|other| *other == nodes).count() == 1);
        }
        // Nodes 1 and 4 share the group [4,5,1]; nodes 1 and 3 share [1,2,3]: in a ring of five
        // every pair shares a group, so nodes lose no link to each other.
        assert!(cuts.node_pairs().is_empty());
    }

    #[test]
    fn isolation_cuts_a_node_from_everyone() {
        let cuts = Cuts::isolate(&[2], 3, 2);
        assert_eq!(cuts.node_pairs(), &[(1, 2), (2, 3)]);
        assert!(!cuts.can_reach(0, 2) && !cuts.can_reach(1, 2) && cuts.can_reach(1, 3));
        assert!(Cuts::default().can_reach(7, 1));
    }
}
