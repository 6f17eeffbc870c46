//! Reading what users hand the tool: regular files only, each kind bounded in size.
//!
//! A FIFO, a device (`/dev/zero`), a socket or a folder given where a file is expected would
//! make a plain `fs::read` block forever or fill memory; a 3 GB file named `.jpg` would be read
//! whole before the decoder refuses it. Every input path goes through [`read`] (or
//! [`open`] for streaming): the path is `stat`ed before it is opened (opening a FIFO blocks
//! until a writer appears), anything but a regular file is refused in one line naming it, and
//! no more than the kind's limit is ever read.

use crate::error::{Error, Result};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// What a file is, for the size limit and the message.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub what: &'static str,
    pub max_bytes: u64,
}

const MIB: u64 = 1 << 20;

/// An ONNX model: protobuf itself cannot exceed 2 GiB (larger weights go to external data).
pub const MODEL: Kind = Kind {
    what: "ONNX model",
    max_bytes: 2048 * MIB,
};
/// Recipes, matrix specs, image lists, label files, JSON reports, plans, tegrastats logs.
pub const TEXT: Kind = Kind {
    what: "text or JSON file",
    max_bytes: 64 * MIB,
};
/// One image: the largest JPEG or PNG a detector's calibration set holds is a few tens of MB.
pub const IMAGE: Kind = Kind {
    what: "image",
    max_bytes: 256 * MIB,
};
/// Calibration caches, timing caches, `.npy` tensors.
pub const CACHE: Kind = Kind {
    what: "cache or tensor file",
    max_bytes: 1024 * MIB,
};
/// Engines and bundle files.
pub const BINARY: Kind = Kind {
    what: "file",
    max_bytes: 8192 * MIB,
};
/// One sysfs attribute or /proc, /etc file.
pub const ATTRIBUTE: Kind = Kind {
    what: "system attribute file",
    max_bytes: MIB,
};

fn refuse(path: &Path, msg: String) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
    )
}

/// The file's size, if it is a regular file (symlinks followed); else a one-line refusal.
pub fn regular_size(path: &Path, kind: Kind) -> Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a folder"
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                if ft.is_fifo() {
                    "a FIFO (named pipe)"
                } else if ft.is_char_device() || ft.is_block_device() {
                    "a device"
                } else if ft.is_socket() {
                    "a socket"
                } else {
                    "not a regular file"
                }
            }
            #[cfg(not(unix))]
            "not a regular file"
        };
        return Err(refuse(
            path,
            format!(
                "is {what}, not a file; give the path of the {} itself",
                kind.what
            ),
        ));
    }
    if meta.len() > kind.max_bytes {
        return Err(refuse(
            path,
            format!(
                "is {} MB, more than the {} MB an {} may be; is it the right file?",
                meta.len() / MIB,
                kind.max_bytes / MIB,
                kind.what
            ),
        ));
    }
    Ok(meta.len())
}

/// Open a regular file for streaming (after the checks of [`regular_size`]).
pub fn open(path: &Path, kind: Kind) -> Result<std::fs::File> {
    regular_size(path, kind)?;
    std::fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// Read a whole regular file of at most `kind.max_bytes` (also when it grows while read).
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>> {
    let size = regular_size(path, kind)?;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(kind.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > kind.max_bytes {
        return Err(refuse(
            path,
            format!("grew past {} MB while being read", kind.max_bytes / MIB),
        ));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, kind: Kind) -> Result<String> {
    String::from_utf8(read(path, kind)?).map_err(|_| {
        refuse(
            path,
            format!("is not UTF-8 text; is it the right {}?", kind.what),
        )
    })
}

/// `len` bytes at `offset` of a regular file (external tensor data), checked against its size
/// first, so a wrong offset is an error and a large file is never read whole.
pub fn read_range(path: &Path, offset: u64, len: Option<u64>) -> Result<Vec<u8>> {
    let size = regular_size(path, BINARY)?;
    let end = match len {
        Some(l) => offset.checked_add(l),
        None => Some(size),
    };
    let end = end.filter(|&e| offset <= e && e <= size).ok_or_else(|| {
        refuse(
            path,
            format!(
                "offset {offset} / length {len:?} go beyond its {size} bytes: the data file is truncated or the model points at the wrong one"
            ),
        )
    })?;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; (end - offset) as usize];
    f.read_exact(&mut buf).map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_folders_and_big_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = read(&fifo, TEXT).unwrap_err().to_string();
        assert!(e.contains("FIFO") && e.contains("pipe"), "{e}");
        let e = read(Path::new("/dev/zero"), IMAGE).unwrap_err().to_string();
        assert!(e.contains("a device"), "{e}");
        let e = read(dir.path(), MODEL).unwrap_err().to_string();
        assert!(e.contains("a folder"), "{e}");
        let big = dir.path().join("big.jpg");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(IMAGE.max_bytes + 1).unwrap();
        let e = read(&big, IMAGE).unwrap_err().to_string();
        assert!(e.contains("more than the 256 MB"), "{e}");
        let small = dir.path().join("data.bin");
        std::fs::write(&small, b"0123456789").unwrap();
        assert_eq!(read_range(&small, 2, Some(3)).unwrap(), b"234");
        assert_eq!(read_range(&small, 8, None).unwrap(), b"89");
        let e = read_range(&small, 8, Some(3)).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        assert!(read_range(&small, u64::MAX, Some(2)).is_err());
    }
}
