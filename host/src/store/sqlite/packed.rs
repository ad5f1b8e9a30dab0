//! JSON the store keeps whole but never queries (a decision's plan and the
//! context it was made with), packed: an LZ4 block with its length in
//! front, stored as a BLOB. A decision's two documents shrink by about
//! 45 %, the outcomes table by a third. Rows written before are JSON text
//! and are read as they are.

use lz4_flex::block::{self, CompressTable};
use rusqlite::types::ValueRef;
use serde_json::value::RawValue;
use std::cell::RefCell;

/// The longest document unpacked; a length beyond it means a damaged row.
const MAX_UNPACKED: usize = 64 << 20;

thread_local! {
    /// The compressor's hash table, cleared and reused: a fresh one per
    /// document (allocated, then zeroed) cost about as much as compressing.
    static TABLE: RefCell<CompressTable> = RefCell::new(CompressTable::default());
}

/// A JSON document, packed.
pub(super) fn pack(json: &RawValue) -> Vec<u8> {
    let input = json.get().as_bytes();
    let Ok(length) = u32::try_from(input.len()) else {
        return block::compress_prepend_size(input);
    };
    let mut packed = vec![0; 4 + block::get_maximum_output_size(input.len())];
    packed[..4].copy_from_slice(&length.to_le_bytes());
    let written = TABLE
        .with_borrow_mut(|table| block::compress_into_with_table(input, &mut packed[4..], table));
    match written {
        Ok(written) => {
            packed.truncate(4 + written);
            packed
        }
        // Cannot happen with room for the worst case; packed the plain way.
        Err(_) => block::compress_prepend_size(input),
    }
}

/// A stored document: packed (a BLOB), JSON text (written before documents
/// were packed), or NULL. `None` for NULL or what cannot be read back.
pub(super) fn unpack(stored: ValueRef<'_>) -> Option<serde_json::Value> {
    match stored {
        ValueRef::Text(text) => serde_json::from_slice(text).ok(),
        ValueRef::Blob(packed) => {
            let length = packed.get(..4)?;
            let length = u32::from_le_bytes(length.try_into().ok()?);
            if usize::try_from(length).ok()? > MAX_UNPACKED {
                return None;
            }
            let text = lz4_flex::block::decompress_size_prepended(packed).ok()?;
            serde_json::from_slice(&text).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::value::to_raw_value;

    #[test]
    fn a_packed_document_reads_back_and_is_smaller() {
        let fields: Vec<_> = (0..20)
            .map(|i| json!({ "field": format!("Field{i}"), "name": format!("ccaiField{i}Str") }))
            .collect();
        let document =
            json!({ "settings": { "fields": fields }, "now": "2026-01-15T09:00:23.000Z" });
        let packed = pack(&to_raw_value(&document).expect("raw"));
        // The same block the one-call form writes (the table is reused).
        assert_eq!(
            packed,
            block::compress_prepend_size(document.to_string().as_bytes())
        );
        assert_eq!(pack(&to_raw_value(&document).expect("raw")), packed);
        assert!(
            packed.len() * 2 < document.to_string().len(),
            "{} bytes",
            packed.len()
        );
        assert_eq!(unpack(ValueRef::Blob(&packed)), Some(document.clone()));
        let text = document.to_string();
        assert_eq!(unpack(ValueRef::Text(text.as_bytes())), Some(document));
        assert_eq!(unpack(ValueRef::Null), None);
    }

    #[test]
    fn a_damaged_packed_document_is_none_not_a_huge_allocation() {
        let mut packed = pack(&to_raw_value(&json!({ "a": 1 })).expect("raw"));
        packed[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(unpack(ValueRef::Blob(&packed)), None);
        assert_eq!(unpack(ValueRef::Blob(&[1, 2])), None);
        assert_eq!(unpack(ValueRef::Blob(&[5, 0, 0, 0, 0xff])), None);
    }
}
