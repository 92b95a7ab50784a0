//! The patchID sequence: 0 means "authoritative, scale-down allowed"; every other patch gets an increasing
//! non-zero id, wrapping from `i32::MAX` back to 1 so a regular patch never uses 0.

/// The listener's patch sequence.
#[derive(Debug, Clone, Default)]
pub struct PatchSequence {
    last: i64,
}

impl PatchSequence {
    /// The id of the next patch: 0 when the policy allows draining, else the next number.
    pub fn next(&mut self, drain: bool) -> i64 {
        self.last = if self.last >= i64::from(i32::MAX) { 1 } else { self.last + 1 };
        if drain { 0 } else { self.last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_skip_zero_and_wrap() {
        let mut seq = PatchSequence::default();
        assert_eq!((seq.next(false), seq.next(true), seq.next(false)), (1, 0, 3));
        let mut seq = PatchSequence { last: i64::from(i32::MAX) - 1 };
        assert_eq!((seq.next(false), seq.next(false)), (i64::from(i32::MAX), 1));
    }
}
