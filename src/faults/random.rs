//! The one generator every random choice of the fault rules draws from.
//!
//! splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", 2014): a 64-bit counter stepped by the golden-ratio
//! constant, each step scrambled by a bijective mixer. Not cryptographic, and
//! it need not be: what matters is that a seed always gives the same
//! sequence on every platform, so that a test meets the same faults again.

/// A seeded sequence of numbers in `[0, 1)` and of whole numbers.
#[derive(Debug, Clone)]
pub struct Generator {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

impl Generator {
    pub fn new(seed: u64) -> Self {
        Generator { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)` from the top 53 bits, every value equally likely.
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of `probability` happens. Always draws, also for 0
    /// and 1, so that changing one rule's probability does not shift the
    /// draws of the rules after it.
    pub fn happens(&mut self, probability: f64) -> bool {
        self.next_unit() < probability
    }

    /// A whole number from `min` to `max`, both included (`min <= max`).
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        let span = (max - min) as f64 + 1.0;
        min + ((self.next_unit() * span) as u64).min(max - min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_sequence_and_another_seed_another() {
        let draws = |seed| {
            let mut g = Generator::new(seed);
            (0..8).map(|_| g.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn the_sequence_is_splitmix64s() {
        // The published first output of splitmix64 seeded with 0.
        assert_eq!(Generator::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn draws_stay_in_their_ranges_and_cover_them() {
        let mut g = Generator::new(1);
        let mut seen = [false; 4];
        for _ in 0..1_000 {
            let unit = g.next_unit();
            assert!((0.0..1.0).contains(&unit));
            let n = g.between(10, 13);
            assert!((10..=13).contains(&n));
            seen[(n - 10) as usize] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(g.between(5, 5), 5);
    }

    #[test]
    fn probability_zero_never_happens_and_one_always_does() {
        let mut g = Generator::new(3);
        assert!((0..1_000).all(|_| !g.happens(0.0)));
        assert!((0..1_000).all(|_| g.happens(1.0)));
        let hits = (0..10_000).filter(|_| g.happens(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
    }
}
