//! Minimal `.npy` (NumPy format v1.0) for float32 tensors: little-endian `<f4`, C order.
//!
//! Written by hand rather than with a crate because the subset is tiny (one dtype, one
//! layout) and the header layout is fixed by the format spec: magic `\x93NUMPY`, version
//! 1.0, u16 header length, a Python dict literal padded with spaces and ending in `\n` so
//! that the data starts at a multiple of 64 bytes.

use crate::error::{Error, Result};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Encode a float32 array as `.npy` bytes (C order whatever the view's layout).
pub fn to_npy_bytes(a: &ArrayViewD<'_, f32>) -> Vec<u8> {
    let shape = match a.shape() {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + a.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    // `iter()` walks in logical (C) order regardless of memory layout.
    for v in a.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Write a float32 array to `path` as `.npy`.
pub fn write_npy(path: &Path, a: &ArrayViewD<'_, f32>) -> Result<()> {
    let bytes = to_npy_bytes(a);
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(&bytes).map_err(|e| Error::io(path, e))
}

/// Read a `.npy` file written as float32 little-endian, C order (what [`write_npy`] and
/// `numpy.save` of a float32 array produce). Other dtypes are refused with the reason.
pub fn read_npy(path: &Path) -> Result<ArrayD<f32>> {
    let bytes = crate::util::input::read(path, crate::util::input::CACHE)?;
    parse_npy(&bytes).map_err(|msg| Error::Invalid(format!("{}: {msg}", path.display())))
}

fn parse_npy(b: &[u8]) -> std::result::Result<ArrayD<f32>, String> {
    if b.len() < 10 || &b[..6] != MAGIC {
        return Err("not a .npy file (bad magic)".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b
        .get(start..start + hlen)
        .ok_or("truncated header")
        .and_then(|h| std::str::from_utf8(h).map_err(|_| "header is not UTF-8"))?;
    let descr = dict_value(header, "descr").ok_or("header lacks 'descr'")?;
    if descr.trim_matches(|c| c == '\'' || c == '"') != "<f4" {
        return Err(format!(
            "dtype {descr} is not little-endian float32 ('<f4')"
        ));
    }
    if dict_value(header, "fortran_order").map(str::trim) != Some("False") {
        return Err("Fortran-ordered arrays are not supported".into());
    }
    let shape_s = dict_value(header, "shape").ok_or("header lacks 'shape'")?;
    let shape: Vec<usize> = shape_s
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_s}"))
        })
        .collect::<std::result::Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let data = &b[start + hlen..];
    if data.len() != n * 4 {
        return Err(format!(
            "data is {} bytes, shape {shape:?} needs {}",
            data.len(),
            n * 4
        ));
    }
    let v: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| e.to_string())
}

/// The text of `'key': value` in a header dict; a tuple value runs to its `)`.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let i = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[i + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn round_trip_and_alignment() {
        let a = Array4::from_shape_fn((1, 3, 2, 5), |(_, c, y, x)| {
            (c * 100 + y * 10 + x) as f32 - 0.5
        });
        let bytes = to_npy_bytes(&a.view().into_dyn());
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert!(std::str::from_utf8(&bytes[10..10 + hlen])
            .unwrap()
            .contains("'shape': (1, 3, 2, 5)"));
        let b = parse_npy(&bytes).unwrap();
        assert_eq!(b, a.into_dyn());
    }

    #[test]
    fn non_contiguous_views_are_written_in_c_order() {
        let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
        let t = a.t();
        let b = parse_npy(&to_npy_bytes(&t.into_dyn())).unwrap();
        assert_eq!(
            b.iter().copied().collect::<Vec<_>>(),
            vec![1.0, 3.0, 2.0, 4.0]
        );
    }

    #[test]
    fn refuses_other_dtypes() {
        let mut bytes = to_npy_bytes(&ndarray::arr1(&[1.0f32]).view().into_dyn());
        let pos = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[pos + 2] = b'8';
        assert!(parse_npy(&bytes).unwrap_err().contains("'<f8'"));
    }
}
