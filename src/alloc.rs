//! A global allocator that zeroes every block before giving it back.
//!
//! Libraries copy secrets into buffers we never see (HTTP read buffers, JSON parsing,
//! `String` growth). Wiping on free means a freed copy does not linger in the heap for a
//! memory scan or a core dump to find (ARCHITECTURE.md, I3). The cost is a write over each
//! freed block and a copy on every `realloc`, which is small for an agent that handles
//! a few kilobytes.

// The crate's one allowance: a global allocator is unsafe by definition.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Wraps [`System`] and zeroes blocks on `dealloc` and on `realloc` moves.
pub struct ZeroingAllocator;

/// Volatile writes, so the compiler cannot drop them as dead stores before `free`.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller owns `len` bytes at `ptr`.
    let block = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    zeroize::Zeroize::zeroize(block);
}

unsafe impl GlobalAlloc for ZeroingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes we are about to free.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // System's realloc may move the block and free the old one unwiped, or shrink
        // in place and leave the tail; so always move by hand and wipe the old block.
        // SAFETY: `new_size` is non-zero and valid for `layout.align()` (GlobalAlloc contract).
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                wipe(ptr, layout.size());
                System.dealloc(ptr, layout);
            }
            new
        }
    }
}
