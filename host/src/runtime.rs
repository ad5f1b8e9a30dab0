//! Rule-module runtime.
