//! Memory as a benchmark or a soak test reads it: the live heap (exact,
//! through [`Counting`] installed as the program's global allocator) and
//! the resident set size (what the allocator holds from the system).
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: mcp_conn_testkit::alloc::Counting = mcp_conn_testkit::alloc::Counting;
//! let held = mcp_conn_testkit::alloc::heap_bytes();
//! ```

// A global allocator is `unsafe` by nature; this one only counts, and
// hands every call to the system allocator unchanged.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting the bytes it has handed out and not yet
/// taken back. Install it with `#[global_allocator]`; read it with
/// [`heap_bytes`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with its own arguments; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            HELD.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Bytes on the heap now (0 unless [`Counting`] is the global allocator).
pub fn heap_bytes() -> isize {
    HELD.load(Ordering::Relaxed)
}

/// This process's resident set size in bytes (`VmRSS`; 0 where `/proc`
/// cannot be read).
pub fn rss_bytes() -> isize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<isize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
