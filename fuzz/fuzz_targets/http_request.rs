#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| goway::fuzzing::http_request(data));
