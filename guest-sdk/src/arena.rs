//! The allocator [`register_rule!`](crate::register_rule) installs in a
//! module: a bump arena for short-lived instances.
//!
//! The host gives every event a fresh instance, so nearly everything a call
//! allocates (its inputs, the plan, the strings in between) lives until the
//! call ends. Allocating from the arena is a pointer bump; freeing only
//! counts, and once nothing allocated from the arena is alive (the host has
//! read the plan and the instance freed its results) the arena starts over.
//! What does not fit goes to the standard allocator, so a module that keeps
//! allocations across calls, or allocates more than the arena holds, stays
//! correct: it only loses the speed-up.
//!
//! Outside wasm (native tests) the macro does not install it.
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// Bytes of the arena, in the module's zero-initialised data: pages are
/// touched only as far as a call allocates.
pub const ARENA_BYTES: usize = 256 * 1024;

#[repr(C, align(16))]
struct Block([u8; ARENA_BYTES]);

struct State {
    /// Offset of the next free byte.
    next: usize,
    /// Allocations from the arena not yet freed.
    live: usize,
}

/// The bump allocator; see the module documentation.
pub struct Arena {
    block: UnsafeCell<Block>,
    state: UnsafeCell<State>,
}

// SAFETY: a wasm32-wasip2 rule module runs on one thread; the arena is never
// shared across threads.
#[allow(
    unsafe_code,
    reason = "a global allocator must be Sync; rule modules are single-threaded"
)]
unsafe impl Sync for Arena {}

impl Arena {
    /// An empty arena (for a `static`).
    #[allow(
        clippy::new_without_default,
        reason = "a const constructor for a global allocator static"
    )]
    pub const fn new() -> Self {
        Self {
            block: UnsafeCell::new(Block([0; ARENA_BYTES])),
            state: UnsafeCell::new(State { next: 0, live: 0 }),
        }
    }

    fn base(&self) -> usize {
        self.block.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let at = ptr as usize;
        at >= self.base() && at < self.base() + ARENA_BYTES
    }
}

// SAFETY: every pointer handed out lies inside the arena's block (aligned as
// asked, not overlapping any live allocation: the bump only moves forward
// until no allocation is live) or comes from the standard allocator, and is
// returned to the one it came from.
#[allow(
    unsafe_code,
    reason = "implementing GlobalAlloc is unsafe by definition; see the SAFETY note"
)]
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (see `Sync`), and no reference to the
        // state outlives this call.
        let state = unsafe { &mut *self.state.get() };
        let base = self.base();
        let start = (base + state.next).next_multiple_of(layout.align());
        match start.checked_add(layout.size()) {
            Some(end) if end <= base + ARENA_BYTES => {
                state.next = end - base;
                state.live += 1;
                start as *mut u8
            }
            // SAFETY: forwarded with the caller's layout.
            _ => unsafe { std::alloc::System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so the standard allocator's, with this layout.
            return unsafe { std::alloc::System.dealloc(ptr, layout) };
        }
        // SAFETY: as in `alloc`.
        let state = unsafe { &mut *self.state.get() };
        state.live = state.live.saturating_sub(1);
        if state.live == 0 {
            state.next = 0;
        } else if ptr as usize + layout.size() == self.base() + state.next {
            // The latest allocation: give its bytes back.
            state.next = ptr as usize - self.base();
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            // SAFETY: as in `alloc`.
            let state = unsafe { &mut *self.state.get() };
            let base = self.base();
            // The latest allocation grows or shrinks in place when it fits.
            if ptr as usize + layout.size() == base + state.next
                && ptr as usize + new_size <= base + ARENA_BYTES
            {
                state.next = ptr as usize + new_size - base;
                return ptr;
            }
            if new_size <= layout.size() {
                return ptr;
            }
        }
        // SAFETY: the default: allocate, copy, free, all through `self`.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    #[allow(unsafe_code, reason = "exercising the allocator directly")]
    fn allocations_are_aligned_distinct_and_the_arena_starts_over_when_all_are_freed() {
        let arena = Box::new(Arena::new());
        // SAFETY: every pointer is freed once, with the layout it came with.
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(40, 16));
            assert!(arena.owns(a) && arena.owns(b));
            assert_eq!(b as usize % 16, 0);
            assert!(b as usize >= a as usize + 3, "no overlap");
            arena.dealloc(a, layout(3, 1));
            let c = arena.alloc(layout(8, 8));
            assert!(c as usize >= b as usize + 40, "b is still alive");
            arena.dealloc(b, layout(40, 16));
            arena.dealloc(c, layout(8, 8));
            let d = arena.alloc(layout(8, 8));
            assert_eq!(d as usize, arena.base(), "all freed: the arena starts over");
            arena.dealloc(d, layout(8, 8));
        }
    }

    #[test]
    #[allow(unsafe_code, reason = "exercising the allocator directly")]
    fn what_does_not_fit_comes_from_the_standard_allocator_and_goes_back_there() {
        let arena = Box::new(Arena::new());
        // SAFETY: as above.
        unsafe {
            let kept = arena.alloc(layout(16, 8));
            let big = arena.alloc(layout(ARENA_BYTES, 8));
            assert!(!big.is_null() && !arena.owns(big));
            big.write_bytes(7, ARENA_BYTES);
            arena.dealloc(big, layout(ARENA_BYTES, 8));
            // The latest allocation grows in place; past the end it moves out.
            let grown = arena.realloc(kept, layout(16, 8), 1024);
            assert_eq!(grown, kept);
            let moved = arena.realloc(grown, layout(1024, 8), 2 * ARENA_BYTES);
            assert!(!arena.owns(moved));
            arena.dealloc(moved, layout(2 * ARENA_BYTES, 8));
            let again = arena.alloc(layout(8, 8));
            assert_eq!(
                again as usize,
                arena.base(),
                "nothing of the arena is alive"
            );
            arena.dealloc(again, layout(8, 8));
        }
    }

    #[test]
    #[allow(unsafe_code, reason = "exercising the allocator directly")]
    fn a_realloc_keeps_the_contents() {
        let arena = Box::new(Arena::new());
        // SAFETY: as above.
        unsafe {
            let first = arena.alloc(layout(4, 1));
            first.copy_from_nonoverlapping(b"rule".as_ptr(), 4);
            let second = arena.alloc(layout(4, 1));
            // Not the latest allocation: copied to a new place.
            let moved = arena.realloc(first, layout(4, 1), 64);
            assert_ne!(moved, first);
            assert_eq!(core::slice::from_raw_parts(moved, 4), b"rule");
            arena.dealloc(second, layout(4, 1));
            arena.dealloc(moved, layout(64, 1));
        }
    }
}
