//! What the fuzz targets share: cutting the input into the chunks a pipe or
//! a socket might deliver.

/// Cuts `data` into chunks whose sizes (1 to 255 bytes) its first four
/// bytes choose, in turn; the rest of `data` is what the chunks hold.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let (sizes, mut rest) = data.split_at(data.len().min(4));
    let mut out = Vec::new();
    let mut n = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(n % sizes.len().max(1))
            .copied()
            .unwrap_or(64)
            .max(1);
        n += 1;
        let (now, later) = rest.split_at(usize::from(size).min(rest.len()));
        out.push(now);
        rest = later;
    }
    out
}
