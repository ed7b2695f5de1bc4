//! Recycled output memory.
//!
//! A result is hundreds of megabytes that live until the caller drops its frame. Memory fresh
//! from the OS costs a page fault and a zeroed page per 4 KiB on first touch, and unmapping it
//! costs TLB flushes: on a repeated 10-million-row read that was a third of the time. So the
//! assembler takes its output buffers from an [`OutputPool`], and a buffer goes back to the pool
//! when Arrow drops its last reference, warm and mapped for the next read. The pool keeps at most
//! its byte bound of idle buffers and frees the rest.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::ArrowNativeType;

/// Idle buffers smaller than this are not worth keeping.
const MIN_KEPT: usize = 64 << 10;
/// A buffer serves a request at most this many times smaller than itself.
const MAX_WASTE: usize = 4;

/// Output buffers for reads, recycled once their results are dropped. Its lists stay
/// consistent under any panic, so a poisoned lock is used as it is.
#[derive(Clone)]
pub struct OutputPool {
    shared: Arc<Mutex<Idle>>,
}

struct Idle {
    /// Idle buffers; each one's `len` is its whole, initialised allocation, a multiple of 64.
    buffers: Vec<MutableBuffer>,
    bytes: usize,
    bound: usize,
}

impl OutputPool {
    /// A pool keeping at most `bound` bytes of idle buffers; 0 keeps none.
    pub fn new(bound: usize) -> Self {
        Self { shared: Arc::new(Mutex::new(Idle { buffers: Vec::new(), bytes: 0, bound })) }
    }

    /// A buffer of `len` bytes. Its contents are unspecified: the caller writes every byte it
    /// hands on.
    pub fn take(&self, len: usize) -> Lease {
        let reused = {
            let mut idle = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            let best = idle
                .buffers
                .iter()
                .enumerate()
                .filter(|(_, b)| b.len() >= len && b.len() <= len.saturating_mul(MAX_WASTE).max(MIN_KEPT))
                .min_by_key(|(_, b)| b.len())
                .map(|(i, _)| i);
            best.map(|i| {
                let buffer = idle.buffers.swap_remove(i);
                idle.bytes -= buffer.len();
                buffer
            })
        };
        // Whole cache lines, so any buffer views as any native type.
        let buffer = reused.unwrap_or_else(|| MutableBuffer::from_len_zeroed(len.next_multiple_of(64)));
        Lease { buffer: Some(buffer), len, pool: Arc::clone(&self.shared) }
    }

    /// Bytes of idle buffers held now.
    #[cfg(test)]
    pub fn idle_bytes(&self) -> usize {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }
}

/// A buffer taken from an [`OutputPool`]; it returns there when dropped, and so does the
/// [`Buffer`] made of it once Arrow drops that.
pub struct Lease {
    buffer: Option<MutableBuffer>,
    len: usize,
    pool: Arc<Mutex<Idle>>,
}

impl Lease {
    /// The buffer as `len / size_of::<T>()` values.
    pub fn typed_mut<T: ArrowNativeType>(&mut self) -> &mut [T] {
        let n = self.len / std::mem::size_of::<T>();
        &mut self.buffer.as_mut().expect("held until dropped").typed_data_mut::<T>()[..n]
    }

    /// Hands the buffer to Arrow without copying it.
    pub fn into_buffer(mut self) -> Buffer {
        let len = self.len;
        let Some(buffer) = self.buffer.as_mut() else { unreachable!("held until dropped") };
        let ptr = NonNull::new(buffer.as_mut_ptr()).expect("an allocation is never null");
        // SAFETY: `ptr` points at `len` initialised bytes of the MutableBuffer that `self` owns.
        // Its heap allocation does not move when `self` moves, nothing resizes it, and it is
        // freed or pooled only when `self` drops, which Arrow does after its last reference.
        unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(self)) }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        let mut idle = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.len() < MIN_KEPT || buffer.len() > idle.bound {
            return;
        }
        // The oldest idle buffers make room.
        while idle.bytes + buffer.len() > idle.bound {
            let oldest = idle.buffers.remove(0);
            idle.bytes -= oldest.len();
        }
        idle.bytes += buffer.len();
        idle.buffers.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_serves_the_next_request_in_place() {
        let pool = OutputPool::new(16 << 20);
        let mut lease = pool.take(1 << 20);
        lease.typed_mut::<u32>().fill(7);
        let buffer = lease.into_buffer();
        let address = buffer.as_ptr();
        assert_eq!(buffer.typed_data::<u32>()[12], 7);
        assert_eq!(pool.idle_bytes(), 0, "in use");
        let clone = buffer.clone();
        drop(buffer);
        assert_eq!(pool.idle_bytes(), 0, "a clone still uses it");
        drop(clone);
        assert_eq!(pool.idle_bytes(), 1 << 20);
        let mut again = pool.take(1 << 20);
        assert_eq!(again.typed_mut::<u8>().as_ptr(), address, "the same memory");
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn the_bound_is_kept_and_misfits_are_not_used() {
        let pool = OutputPool::new(3 << 20);
        let leases: Vec<Lease> = (0..4).map(|_| pool.take(1 << 20)).collect();
        drop(leases);
        assert_eq!(pool.idle_bytes(), 3 << 20, "one buffer over the bound was freed");
        let big = pool.take(8 << 20);
        assert_eq!(pool.idle_bytes(), 3 << 20, "no idle buffer is large enough");
        drop(big);
        assert_eq!(pool.idle_bytes(), 3 << 20, "larger than the bound: freed at once");
        drop(pool.take(2 << 20));
        assert_eq!(pool.idle_bytes(), 3 << 20, "the two oldest made room");
        let mut odd = pool.take(1001);
        assert_eq!(odd.typed_mut::<u8>().len(), 1001);
        assert_eq!(odd.typed_mut::<i128>().len(), 62);
        let unpooled = OutputPool::new(0);
        drop(unpooled.take(1 << 20));
        assert_eq!(unpooled.idle_bytes(), 0);
    }
}
