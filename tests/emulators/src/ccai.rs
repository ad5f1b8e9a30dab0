//! CCAI Platform API emulator and scenario player.
