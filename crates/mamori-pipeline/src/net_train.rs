//! Which rows a network detector is trained and calibrated on: every attack row and a fair
//! share of normal rows per capture, so a week-long capture of one chatty hub does not crowd out
//! the other devices (a device with few rows would otherwise be a small cluster, and small
//! clusters look anomalous). Generic over the row type: labels are the caller's.

use std::collections::BTreeMap;

use mamori_detect::rng::Rng;

/// Rows with the capture they came from.
pub type Sourced<'a, T> = Vec<(&'a str, &'a T)>;

/// The rows to train on, and how many attack and normal rows were sampled when there were too
/// many (`None`: all were kept).
pub struct Sample<'a, T> {
    /// The rows.
    pub rows: Vec<&'a T>,
    /// `(attack, normal)` rows kept, when sampled.
    pub sampled: Option<(usize, usize)>,
}

/// At most `max` rows. Attack rows are rare and each one matters, so all are kept (up to half of
/// `max`, sampled beyond that); normal rows fill the rest, shared between captures
/// ([`share_by_source`]). Class weights make up for the changed proportions.
pub fn sample_rows<T>(
    rows: &[(String, T)],
    max: usize,
    seed: u64,
    is_attack: impl Fn(&T) -> bool,
) -> Sample<'_, T> {
    if rows.len() <= max {
        return Sample {
            rows: rows.iter().map(|(_, r)| r).collect(),
            sampled: None,
        };
    }
    let mut rng = Rng::seeded(seed);
    let mut attack: Vec<&T> = rows
        .iter()
        .map(|(_, r)| r)
        .filter(|r| is_attack(r))
        .collect();
    rng.shuffle(&mut attack);
    attack.truncate(max / 2);
    let normal = rows
        .iter()
        .filter(|(_, r)| !is_attack(r))
        .map(|(s, r)| (s.as_str(), r))
        .collect();
    let normal = share_by_source(normal, max - attack.len(), &mut rng);
    let sampled = Some((attack.len(), normal.len()));
    attack.extend(normal);
    Sample {
        rows: attack,
        sampled,
    }
}

/// Rows split for training and for the threshold: every fourth is held out.
pub fn held_out_every_fourth<'a, T>(rows: Sourced<'a, T>) -> (Sourced<'a, T>, Sourced<'a, T>) {
    let (mut train, mut calibration) = (Vec::new(), Vec::new());
    for (i, row) in rows.into_iter().enumerate() {
        if i % 4 == 3 {
            calibration.push(row);
        } else {
            train.push(row);
        }
    }
    (train, calibration)
}

/// At most `budget` rows, shared fairly between captures: a capture with fewer rows than its
/// share keeps them all and what it leaves is split among the others.
pub fn share_by_source<'a, T>(rows: Sourced<'a, T>, budget: usize, rng: &mut Rng) -> Vec<&'a T> {
    if rows.len() <= budget {
        return rows.into_iter().map(|(_, r)| r).collect();
    }
    let mut groups = by_source(rows);
    groups.sort_by_key(Vec::len);
    let (mut left, n) = (budget, groups.len());
    let mut out = Vec::with_capacity(budget);
    for (i, mut group) in groups.into_iter().enumerate() {
        rng.shuffle(&mut group);
        group.truncate(left / (n - i));
        left -= group.len();
        out.extend(group);
    }
    out
}

/// `budget` rows with every capture contributing the same number: captures with fewer rows are
/// drawn with replacement, larger ones sampled without.
pub fn equal_by_source<'a, T>(rows: Sourced<'a, T>, budget: usize, rng: &mut Rng) -> Vec<&'a T> {
    let groups = by_source(rows);
    let share = (budget / groups.len().max(1)).max(1);
    let mut out = Vec::with_capacity(budget);
    for mut group in groups {
        if group.len() >= share {
            rng.shuffle(&mut group);
            out.extend(group.into_iter().take(share));
        } else {
            out.extend(group.iter().copied());
            out.extend((group.len()..share).map(|_| group[rng.below(group.len())]));
        }
    }
    out
}

/// The rows of each capture, in capture-name order.
fn by_source<'a, T>(rows: Sourced<'a, T>) -> Vec<Vec<&'a T>> {
    let mut groups: BTreeMap<&str, Vec<&T>> = BTreeMap::new();
    for (source, r) in rows {
        groups.entry(source).or_default().push(r);
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(capture, (index, attack))` rows: `n` normal rows from each capture, then attacks.
    fn rows(sizes: &[(&str, usize)], attacks: usize) -> Vec<(String, (usize, bool))> {
        let mut out = Vec::new();
        for (name, n) in sizes {
            out.extend((0..*n).map(|i| (name.to_string(), (i, false))));
        }
        out.extend((0..attacks).map(|i| ("lab".to_string(), (i, true))));
        out
    }

    #[test]
    fn every_attack_row_is_kept_and_a_chatty_capture_gets_only_its_share() {
        let r = rows(&[("hub", 10_000), ("lock", 50), ("cam", 400)], 30);
        let s = sample_rows(&r, 1_000, 1, |x| x.1);
        assert_eq!(s.sampled, Some((30, 970)));
        assert_eq!(s.rows.iter().filter(|x| x.1).count(), 30);
        // the lock keeps its 50, the camera its 400 (under its share of 460), the hub the rest
        let from = |name: &str| {
            r.iter()
                .filter(|(s2, x)| s2 == name && s.rows.iter().any(|y| std::ptr::eq(*y, x)))
                .count()
        };
        assert_eq!((from("lock"), from("cam"), from("hub")), (50, 400, 520));
        let all = sample_rows(&r[..100], 1_000, 1, |x| x.1);
        assert!(all.sampled.is_none());
        assert_eq!(all.rows.len(), 100);
    }

    #[test]
    fn equal_shares_draw_small_captures_with_replacement() {
        let r = rows(&[("hub", 1_000), ("lock", 10)], 0);
        let sourced: Sourced<'_, (usize, bool)> = r.iter().map(|(s, x)| (s.as_str(), x)).collect();
        let mut rng = Rng::seeded(3);
        let out = equal_by_source(sourced, 200, &mut rng);
        assert_eq!(out.len(), 200);
        let lock = out
            .iter()
            .filter(|x| r[1_000..].iter().any(|(_, y)| std::ptr::eq(**x, y)))
            .count();
        assert_eq!(lock, 100, "each capture weighs the same");
        let (train, cal) = held_out_every_fourth(r.iter().map(|(s, x)| (s.as_str(), x)).collect());
        assert_eq!((train.len(), cal.len()), (758, 252));
    }
}
