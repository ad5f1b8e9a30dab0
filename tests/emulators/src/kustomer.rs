//! Kustomer API emulator.
