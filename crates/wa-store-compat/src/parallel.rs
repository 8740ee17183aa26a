//! Spreading large batches of independent file work (reading and decoding files, encoding
//! values, writing and syncing temp files) over scoped threads. Small batches stay on the
//! calling thread, which is always the writer thread or one of tokio's blocking threads.

/// Fewer items than this are handled on the calling thread.
pub(crate) const MIN_ITEMS: usize = 64;

/// Threads for CPU-bound work: the machine's parallelism, at most 8.
pub(crate) fn cpu_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Threads for writes that end in `fsync`: syncs from several threads share the file system's
/// journal commits, so more threads than cores pay off.
pub(crate) const SYNC_THREADS: usize = 16;

/// `items.iter().map(f)`, on up to `threads` threads when there are enough items; the results
/// keep the order of the items.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if items.len() < MIN_ITEMS || threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_their_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, 3, |n| n * 2),
            items.iter().map(|n| n * 2).collect::<Vec<_>>()
        );
        assert_eq!(super::map(&items[..3], 3, |n| *n), vec![0, 1, 2]);
    }
}
