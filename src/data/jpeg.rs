//! Does a sequential JPEG's entropy-coded data hold every block its frame header declares?
//!
//! Why: a JPEG cut in the middle of its scan, with an end-of-image marker appended (what a
//! broken download or a careless repair leaves), decodes "successfully": zune-jpeg (and so
//! `image`) fills the missing blocks from zero bits, strict mode included, and calibration
//! would see a partly grey picture. Only walking the Huffman codes tells how many blocks the
//! data really holds, so this module does that, without dequantizing or transforming
//! anything: 9-bit table lookups, longer codes through the canonical code ranges.
//!
//! Scope: baseline and extended sequential Huffman frames (SOF0, SOF1), interleaved or one
//! scan per component, with or without restart intervals. Progressive and arithmetic-coded
//! files are not walked. The walk only ever answers "truncated" when the data provably ran
//! out (a marker or the file's end) before the last block; anything it does not understand
//! counts as complete, so a file it cannot judge is left to the decoder.

/// Bits looked up at once: codes up to this long are decoded by one table read.
const FAST: u32 = 9;

/// One Huffman table: canonical codes, by length, as (first code, count, first index) per
/// length, and a lookup of every code up to [`FAST`] bits.
#[derive(Clone)]
struct Table {
    first_code: [u32; 17],
    count: [u32; 17],
    first_index: [u32; 17],
    symbols: Vec<u8>,
    /// Indexed by the next FAST bits: `len << 8 | symbol`, 0 when the code is longer.
    fast: Vec<u16>,
}

impl Table {
    fn new(counts: &[u8], symbols: &[u8]) -> Table {
        let mut t = Table {
            first_code: [0; 17],
            count: [0; 17],
            first_index: [0; 17],
            symbols: symbols.to_vec(),
            fast: vec![0; 1 << FAST],
        };
        let (mut code, mut index) = (0u32, 0u32);
        for len in 1..=16 {
            t.first_code[len] = code;
            t.count[len] = u32::from(counts[len - 1]);
            t.first_index[len] = index;
            if len as u32 <= FAST {
                for k in 0..t.count[len] {
                    let (c, i) = (code + k, (index + k) as usize);
                    let (Some(&sym), true) = (symbols.get(i), c < (1 << len)) else {
                        continue;
                    };
                    let shift = FAST - len as u32;
                    for low in 0..(1u32 << shift) {
                        t.fast[((c << shift) | low) as usize] =
                            ((len as u16) << 8) | u16::from(sym);
                    }
                }
            }
            code = (code + t.count[len]) << 1;
            index += t.count[len];
        }
        t
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
}

/// Reads entropy-coded bits through a 64-bit accumulator, undoing byte stuffing; stops at
/// any marker (or the file's end), after which only the bits already read remain.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    /// Valid bits at the bottom of `acc`.
    n: u32,
    /// A marker (or the end of the file) was reached.
    ended: bool,
}

impl Bits<'_> {
    fn new(data: &[u8], pos: usize) -> Bits<'_> {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            ended: false,
        }
    }

    fn refill(&mut self) {
        while self.n <= 56 && !self.ended {
            let Some(&b) = self.data.get(self.pos) else {
                self.ended = true;
                break;
            };
            if b == 0xFF {
                if self.data.get(self.pos + 1) == Some(&0x00) {
                    self.pos += 2;
                } else {
                    self.ended = true;
                    break;
                }
            } else {
                self.pos += 1;
            }
            self.acc = (self.acc << 8) | u64::from(b);
            self.n += 8;
        }
    }

    /// The next `k` bits (1..=16, at most `n`), not consumed.
    fn peek(&self, k: u32) -> u32 {
        ((self.acc >> (self.n - k)) & ((1u64 << k) - 1)) as u32
    }

    fn bits(&mut self, k: u32) -> Option<()> {
        if self.n < k {
            self.refill();
            if self.n < k {
                return None;
            }
        }
        self.n -= k;
        Some(())
    }

    fn symbol(&mut self, t: &Table) -> Result<u8, Walk> {
        if self.n < 16 {
            self.refill();
        }
        // Short of FAST bits at the very end: look up with zeros below, and accept the hit
        // only if its code fits in the bits really there.
        let look = if self.n >= FAST {
            self.peek(FAST)
        } else if self.n > 0 {
            self.peek(self.n) << (FAST - self.n)
        } else {
            return Err(Walk::Ended);
        };
        let e = t.fast[look as usize];
        if e != 0 {
            let len = u32::from(e >> 8);
            if len > self.n {
                return Err(Walk::Ended);
            }
            self.n -= len;
            return Ok(e as u8);
        }
        for len in FAST as usize + 1..=16 {
            if len as u32 > self.n {
                return Err(Walk::Ended);
            }
            let code = self.peek(len as u32);
            let offset = code.wrapping_sub(t.first_code[len]);
            if code >= t.first_code[len] && offset < t.count[len] {
                self.n -= len as u32;
                let i = (t.first_index[len] + offset) as usize;
                return t.symbols.get(i).copied().ok_or(Walk::Unknown);
            }
        }
        Err(Walk::Unknown)
    }

    /// Skip to the restart marker expected next (`FF D0..D7`): the bits left are padding.
    fn restart(&mut self) -> bool {
        self.acc = 0;
        self.n = 0;
        self.ended = false;
        while self.pos + 1 < self.data.len() {
            let (a, b) = (self.data[self.pos], self.data[self.pos + 1]);
            if a == 0xFF && (0xD0..=0xD7).contains(&b) {
                self.pos += 2;
                return true;
            }
            if a == 0xFF && b != 0x00 && b != 0xFF {
                return false;
            }
            self.pos += 1;
        }
        false
    }
}

/// How a walk ended when it did not finish the scan.
enum Walk {
    /// The data ran out before the last block.
    Ended,
    /// Something the walk does not understand: not judged.
    Unknown,
}

/// One 8x8 block: a DC difference, then AC codes up to the end of block.
fn block(bits: &mut Bits, dc: &Table, ac: &Table) -> Result<(), Walk> {
    let s = bits.symbol(dc)?;
    if s > 16 {
        return Err(Walk::Unknown);
    }
    bits.bits(u32::from(s)).ok_or(Walk::Ended)?;
    let mut k = 1;
    while k < 64 {
        let rs = bits.symbol(ac)?;
        let (run, size) = (rs >> 4, rs & 15);
        if size == 0 {
            if run == 15 {
                k += 16;
                continue;
            }
            break;
        }
        k += usize::from(run);
        bits.bits(u32::from(size)).ok_or(Walk::Ended)?;
        k += 1;
    }
    if k > 64 {
        return Err(Walk::Unknown);
    }
    Ok(())
}

/// `false` only when a sequential Huffman JPEG's data provably ends before its last block.
pub fn entropy_data_complete(b: &[u8]) -> bool {
    !matches!(walk(b), Err(Walk::Ended))
}

fn walk(b: &[u8]) -> Result<(), Walk> {
    let u16_at = |i: usize| -> Result<usize, Walk> {
        Ok(usize::from(u16::from_be_bytes([
            *b.get(i).ok_or(Walk::Unknown)?,
            *b.get(i + 1).ok_or(Walk::Unknown)?,
        ])))
    };
    let mut dc: [Option<Table>; 4] = Default::default();
    let mut ac: [Option<Table>; 4] = Default::default();
    let mut comps: Vec<Component> = Vec::new();
    let (mut width, mut height, mut restart) = (0usize, 0usize, 0usize);
    let mut i = 2;
    loop {
        if i + 2 > b.len() || b[i] != 0xFF {
            // Headers end without reaching the end-of-image marker: not judged here.
            return Err(Walk::Unknown);
        }
        let marker = b[i + 1];
        match marker {
            0xFF => {
                i += 1;
                continue;
            }
            0xD9 => return Ok(()),
            0x01 | 0xD0..=0xD7 => {
                i += 2;
                continue;
            }
            _ => {}
        }
        // Every other marker starts a segment with a length.
        let len = u16_at(i + 2)?;
        let seg = b.get(i + 4..i + 2 + len).ok_or(Walk::Unknown)?;
        match marker {
            0xC0 | 0xC1 => {
                if seg.len() < 6 {
                    return Err(Walk::Unknown);
                }
                height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                // The decoder refuses larger frames anyway; walking them would only cost time.
                let side = super::image::MAX_SIDE as usize;
                if width > side || height > side {
                    return Err(Walk::Unknown);
                }
                let n = usize::from(seg[5]);
                comps = (0..n)
                    .map(|k| {
                        let c = seg.get(6 + 3 * k..9 + 3 * k).ok_or(Walk::Unknown)?;
                        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
                        if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                            return Err(Walk::Unknown);
                        }
                        Ok(Component { id: c[0], h, v })
                    })
                    .collect::<Result<_, _>>()?;
            }
            // Progressive, lossless, hierarchical or arithmetic-coded: not walked.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Err(Walk::Unknown),
            0xC4 => {
                let mut s = seg;
                while s.len() >= 17 {
                    let (class, id) = (s[0] >> 4, usize::from(s[0] & 15));
                    let total: usize = s[1..17].iter().map(|&c| usize::from(c)).sum();
                    let symbols = s.get(17..17 + total).ok_or(Walk::Unknown)?;
                    let t = Table::new(&s[1..17], symbols);
                    match (class, id) {
                        (0, 0..=3) => dc[id] = Some(t),
                        (1, 0..=3) => ac[id] = Some(t),
                        _ => return Err(Walk::Unknown),
                    }
                    s = &s[17 + total..];
                }
            }
            0xDD => restart = u16_at(i + 4)?,
            0xDA => {
                let end = scan(
                    b,
                    i + 2 + len,
                    seg,
                    &comps,
                    (width, height),
                    restart,
                    &dc,
                    &ac,
                )?;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 2 + len;
    }
}

/// Walk one scan whose header is `seg` and data starts at `start`; returns where the data
/// ended (the next marker).
#[allow(clippy::too_many_arguments)]
fn scan(
    b: &[u8],
    start: usize,
    seg: &[u8],
    comps: &[Component],
    (width, height): (usize, usize),
    restart: usize,
    dc: &[Option<Table>; 4],
    ac: &[Option<Table>; 4],
) -> Result<usize, Walk> {
    if comps.is_empty() || width == 0 || height == 0 || seg.is_empty() {
        return Err(Walk::Unknown);
    }
    let ns = usize::from(seg[0]);
    // 1 to 4 components, each named once, then Ss, Se, Ah/Al (T.81 B.2.3). A scan with no
    // component would walk its MCU count without reading a bit.
    if !(1..=4).contains(&ns) || seg.len() != 1 + 2 * ns + 3 {
        return Err(Walk::Unknown);
    }
    // (component, dc table, ac table) in scan order.
    let mut members = Vec::with_capacity(ns);
    for k in 0..ns {
        let s = seg.get(1 + 2 * k..3 + 2 * k).ok_or(Walk::Unknown)?;
        let c = comps.iter().find(|c| c.id == s[0]).ok_or(Walk::Unknown)?;
        let d = dc[usize::from(s[1] >> 4) & 3]
            .as_ref()
            .ok_or(Walk::Unknown)?;
        let a = ac[usize::from(s[1] & 15) & 3]
            .as_ref()
            .ok_or(Walk::Unknown)?;
        members.push((c, d, a));
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    // MCUs and blocks per MCU: a one-component scan is not interleaved and walks that
    // component's own block grid (T.81 A.2.2); otherwise MCUs of hmax x vmax blocks.
    let (mcus, per_mcu): (usize, Vec<usize>) = if ns == 1 {
        let c = members[0].0;
        let cw = (width * c.h).div_ceil(hmax);
        let ch = (height * c.v).div_ceil(vmax);
        (cw.div_ceil(8) * ch.div_ceil(8), vec![1])
    } else {
        let mcus = width.div_ceil(8 * hmax) * height.div_ceil(8 * vmax);
        (mcus, members.iter().map(|(c, _, _)| c.h * c.v).collect())
    };
    let mut bits = Bits::new(b, start);
    for m in 0..mcus {
        if restart > 0 && m > 0 && m % restart == 0 && !bits.restart() {
            return Err(Walk::Ended);
        }
        for ((_, d, a), &n) in members.iter().zip(&per_mcu) {
            for _ in 0..n {
                block(&mut bits, d, a)?;
            }
        }
    }
    // Resume the segment walk at the marker that ends the data.
    let mut p = bits.pos;
    while p + 1 < b.len()
        && !(b[p] == 0xFF && b[p + 1] != 0x00 && !(0xD0..=0xD7).contains(&b[p + 1]))
    {
        p += 1;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;

    fn jpeg(w: u32, h: u32, gray: bool) -> Vec<u8> {
        let mut state = 11u32;
        let n = (w * h * if gray { 1 } else { 3 }) as usize;
        let px: Vec<u8> = (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let mut out = Vec::new();
        let ct = if gray {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        JpegEncoder::new_with_quality(&mut out, 85)
            .encode(&px, w, h, ct)
            .unwrap();
        out
    }

    #[test]
    fn a_scan_without_components_is_not_walked() {
        // Found in review: 2000 such scans in 16 KB spun for minutes (no bit is read).
        let j = jpeg(64, 64, false);
        let sof = j.windows(2).position(|x| x == [0xFF, 0xC0]).unwrap();
        let sof_len = usize::from(u16::from_be_bytes([j[sof + 2], j[sof + 3]]));
        let mut b = j[..sof + 2 + sof_len].to_vec();
        for _ in 0..2000 {
            b.extend([0xFF, 0xDA, 0x00, 0x06, 0x00, 0x00, 0x3F, 0x00]);
        }
        b.extend([0xFF, 0xD9]);
        assert!(matches!(walk(&b), Err(Walk::Unknown)));
    }

    #[test]
    fn whole_files_are_complete_and_cut_ones_are_not() {
        for (w, h, gray) in [
            (64, 64, false),
            (37, 23, false),
            (50, 9, true),
            (8, 8, false),
        ] {
            let j = jpeg(w, h, gray);
            assert!(walk(&j).is_ok(), "{w}x{h} not walked to its end marker");
            let sos = j.windows(2).position(|x| x == [0xFF, 0xDA]).unwrap();
            for frac in [0.2, 0.5, 0.9] {
                let cut_at = sos + 14 + ((j.len() - sos - 16) as f64 * frac) as usize;
                let mut cut = j[..cut_at].to_vec();
                cut.extend([0xFF, 0xD9]);
                assert!(!entropy_data_complete(&cut), "{w}x{h} cut at {frac}");
            }
        }
    }
}
