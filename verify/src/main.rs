//! `evidence-verify`: checks an evidence bundle offline (work in progress).

fn main() {}
