//! hello: the smallest useful shard. Prints who it is (id, name, priority,
//! arguments), shows that the heap works, and exits 0 (or panics when its
//! args are `panic`, to test the runtime's panic path).
#![no_std]
#![no_main]

use coconut_rt::alloc::{string::String, vec::Vec};
use coconut_rt::{info, println};

coconut_rt::main!(main);

fn main() -> u64 {
    println!(
        "hello: hello from shard {} ({}), priority {}",
        info::id(),
        info::name(),
        info::info().priority
    );
    if !info::args().is_empty() {
        println!("hello: args: {}", info::args());
    }
    // `args = "panic"` exercises the runtime's panic path (message, exit 101).
    if info::args() == "panic" {
        panic!("asked to panic by its args");
    }
    // One allocation from each allocator path: a small class and pages.
    let words: Vec<String> = ["coconut", "shards", "say", "hi"]
        .iter()
        .map(|w| String::from(*w))
        .collect();
    let big: Vec<u64> = (0..4096).collect();
    let sum: u64 = big.iter().sum();
    println!("hello: heap ok: {} words, sum {}", words.len(), sum);
    0
}
