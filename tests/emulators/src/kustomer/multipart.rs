//! A small `multipart/form-data` reader for the S3-style upload route: it keeps
//! the order of the parts, which the upload check depends on (file last).

/// The boundary of a `multipart/form-data; boundary=…` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Splits a form body into `(field name, bytes)` in order.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, &delim, 0).ok_or("no opening boundary")? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        // Skip the CRLF after the boundary line.
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("part without headers")?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).to_string();
        let content_start = head_end + 4;
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let content_end = find(body, &next_delim, content_start).ok_or("unterminated part")?;
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .and_then(|l| {
                l.split(';').find_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    (k == "name").then(|| v.trim_matches('"').to_string())
                })
            })
            .ok_or("part without a name")?;
        parts.push((name, body[content_start..content_end].to_vec()));
        pos = content_end + next_delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_in_order_with_binary_file_last() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nabc\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n\x02\r\n--xyz--\r\n";
        let parts = parse(body, "xyz").expect("valid form");
        assert_eq!(parts.len(), 2, "got {parts:?}");
        assert_eq!(parts[0], ("key".to_string(), b"abc".to_vec()));
        assert_eq!(parts[1], ("file".to_string(), b"\x00\x01\r\n\x02".to_vec()));
        assert_eq!(
            boundary("multipart/form-data; boundary=xyz").as_deref(),
            Some("xyz")
        );
    }
}
