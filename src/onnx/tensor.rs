//! Typed read and write of ONNX tensors (initializers and Constant values) for the four
//! element types rewrites need: FLOAT, FLOAT16, INT8 and INT64.
//!
//! ONNX stores values either little-endian in `raw_data` or in a typed repeated field
//! (`float_data`, `int32_data` for FLOAT16/INT8, `int64_data`). Reading accepts both and checks
//! the value count against the dims, so a malformed tensor is an error instead of a wrong
//! answer or an out-of-bounds index later. Writing back ([`set_f32`], [`slice_axis`]) keeps the
//! encoding the tensor had, so an edited model stays as close to the original as possible.

use half::f16;
use onnx_protobuf::{tensor_proto::DataType, TensorProto};

/// Element type of a tensor as ONNX numbers it.
pub fn data_type(t: &TensorProto) -> Option<DataType> {
    protobuf::Enum::from_i32(t.data_type)
}

/// Number of elements the dims describe; `Err` for a negative dim or an overflowing product.
pub fn element_count(dims: &[i64]) -> Result<usize, String> {
    dims.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d).map_err(|_| format!("negative dimension {d} in {dims:?}"))?;
        acc.checked_mul(d)
            .ok_or_else(|| format!("dimensions {dims:?} overflow"))
    })
}

fn check_count(t: &TensorProto, have: usize) -> Result<usize, String> {
    let want = element_count(&t.dims)?;
    if have != want {
        return Err(format!(
            "tensor '{}' has {have} values but its dims {:?} hold {want}",
            t.name, t.dims
        ));
    }
    Ok(want)
}

fn raw_chunks<const N: usize>(t: &TensorProto) -> Result<Vec<[u8; N]>, String> {
    if !t.raw_data.len().is_multiple_of(N) {
        return Err(format!(
            "tensor '{}': raw_data of {} bytes is not a whole number of {N}-byte values",
            t.name,
            t.raw_data.len()
        ));
    }
    let v: Vec<[u8; N]> = t
        .raw_data
        .chunks_exact(N)
        .map(|c| c.try_into().expect("chunks_exact gives N bytes"))
        .collect();
    check_count(t, v.len())?;
    Ok(v)
}

fn wrong_type(t: &TensorProto, want: &str) -> String {
    format!(
        "tensor '{}' is {}, expected {want}",
        t.name,
        crate::onnx::dtype_name(t.data_type)
    )
}

/// Values of a FLOAT or FLOAT16 tensor as f32.
pub fn read_f32(t: &TensorProto) -> Result<Vec<f32>, String> {
    match data_type(t) {
        Some(DataType::FLOAT) if !t.raw_data.is_empty() => Ok(raw_chunks::<4>(t)?
            .into_iter()
            .map(f32::from_le_bytes)
            .collect()),
        Some(DataType::FLOAT) => {
            check_count(t, t.float_data.len())?;
            Ok(t.float_data.clone())
        }
        Some(DataType::FLOAT16) if !t.raw_data.is_empty() => Ok(raw_chunks::<2>(t)?
            .into_iter()
            .map(|b| f16::from_le_bytes(b).to_f32())
            .collect()),
        Some(DataType::FLOAT16) => {
            check_count(t, t.int32_data.len())?;
            // int32_data holds the 16-bit patterns, one per element.
            Ok(t.int32_data
                .iter()
                .map(|&b| f16::from_bits(b as u16).to_f32())
                .collect())
        }
        _ => Err(wrong_type(t, "float or float16")),
    }
}

/// Values of an INT8 tensor.
pub fn read_i8(t: &TensorProto) -> Result<Vec<i8>, String> {
    match data_type(t) {
        Some(DataType::INT8) if !t.raw_data.is_empty() => {
            check_count(t, t.raw_data.len())?;
            Ok(t.raw_data.iter().map(|&b| b as i8).collect())
        }
        Some(DataType::INT8) => {
            check_count(t, t.int32_data.len())?;
            Ok(t.int32_data.iter().map(|&v| v as i8).collect())
        }
        _ => Err(wrong_type(t, "int8")),
    }
}

/// Values of an INT64 tensor.
pub fn read_i64(t: &TensorProto) -> Result<Vec<i64>, String> {
    match data_type(t) {
        Some(DataType::INT64) if !t.raw_data.is_empty() => Ok(raw_chunks::<8>(t)?
            .into_iter()
            .map(i64::from_le_bytes)
            .collect()),
        Some(DataType::INT64) => {
            check_count(t, t.int64_data.len())?;
            Ok(t.int64_data.clone())
        }
        _ => Err(wrong_type(t, "int64")),
    }
}

fn named(name: &str, dims: &[i64], dt: DataType) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.to_vec();
    t.data_type = dt as i32;
    t
}

/// A FLOAT tensor (values in `float_data`).
pub fn float_tensor(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    let mut t = named(name, dims, DataType::FLOAT);
    t.float_data = data;
    t
}

/// A FLOAT16 tensor (values in `raw_data`).
pub fn float16_tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut t = named(name, dims, DataType::FLOAT16);
    t.raw_data = data
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    t
}

/// An INT8 tensor (values in `raw_data`).
pub fn int8_tensor(name: &str, dims: &[i64], data: &[i8]) -> TensorProto {
    let mut t = named(name, dims, DataType::INT8);
    t.raw_data = data.iter().map(|&x| x as u8).collect();
    t
}

/// A 1-D INT64 tensor (values in `int64_data`).
pub fn int64_tensor(name: &str, data: &[i64]) -> TensorProto {
    let mut t = named(name, &[data.len() as i64], DataType::INT64);
    t.int64_data = data.to_vec();
    t
}

/// Replace the values of a FLOAT or FLOAT16 tensor, keeping its name, type and encoding.
pub fn set_f32(t: &mut TensorProto, dims: &[i64], values: &[f32]) -> Result<(), String> {
    if element_count(dims)? != values.len() {
        return Err(format!(
            "tensor '{}': {} values for dims {dims:?}",
            t.name,
            values.len()
        ));
    }
    let raw = !t.raw_data.is_empty();
    match data_type(t) {
        Some(DataType::FLOAT) if raw => {
            t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
        Some(DataType::FLOAT) => t.float_data = values.to_vec(),
        Some(DataType::FLOAT16) if raw => {
            t.raw_data = values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect()
        }
        Some(DataType::FLOAT16) => {
            t.int32_data = values
                .iter()
                .map(|&v| i32::from(f16::from_f32(v).to_bits()))
                .collect()
        }
        _ => return Err(wrong_type(t, "float or float16")),
    }
    t.dims = dims.to_vec();
    Ok(())
}

/// Keep only `keep` (indices, in the order given) along `axis`, for any of the four types.
/// The result has the same name, type and encoding; `axis` shrinks to `keep.len()`.
pub fn slice_axis(t: &TensorProto, axis: usize, keep: &[usize]) -> Result<TensorProto, String> {
    let dims = &t.dims;
    if axis >= dims.len() {
        return Err(format!(
            "tensor '{}' has rank {}, no axis {axis}",
            t.name,
            dims.len()
        ));
    }
    let len = usize::try_from(dims[axis]).map_err(|_| format!("negative dims {dims:?}"))?;
    if let Some(&bad) = keep.iter().find(|&&i| i >= len) {
        return Err(format!(
            "tensor '{}': index {bad} is outside axis {axis} of length {len}",
            t.name
        ));
    }
    let outer = element_count(&dims[..axis])?;
    let inner = element_count(&dims[axis + 1..])?;
    // The result's size, checked (`keep` may repeat indices).
    outer
        .checked_mul(keep.len())
        .and_then(|v| v.checked_mul(inner))
        .ok_or_else(|| format!("tensor '{}': slicing {dims:?} overflows", t.name))?;
    let pick = |n: usize| -> Vec<usize> {
        // Element indices of the result, in order, for a tensor of `n` elements.
        debug_assert_eq!(n, outer * len * inner);
        let mut idx = Vec::with_capacity(outer * keep.len() * inner);
        for o in 0..outer {
            for &k in keep {
                let base = (o * len + k) * inner;
                idx.extend(base..base + inner);
            }
        }
        idx
    };
    let mut out = t.clone();
    out.dims[axis] = keep.len() as i64;
    if element_count(&out.dims)? == 0 {
        // Nothing to gather: an empty keep list, or another axis of length 0 (the indices were
        // checked against `len`, so an empty `axis` has an empty `keep`).
        out.raw_data.clear();
        out.float_data.clear();
        out.int32_data.clear();
        out.int64_data.clear();
        return Ok(out);
    }
    let raw = !t.raw_data.is_empty();
    let size = match data_type(t) {
        Some(DataType::FLOAT) => 4,
        Some(DataType::FLOAT16) => 2,
        Some(DataType::INT8) => 1,
        Some(DataType::INT64) => 8,
        _ => return Err(wrong_type(t, "float, float16, int8 or int64")),
    };
    if raw {
        let n = check_count(t, t.raw_data.len() / size)?;
        if t.raw_data.len() != n * size {
            return Err(format!("tensor '{}': raw_data length", t.name));
        }
        out.raw_data = pick(n)
            .into_iter()
            .flat_map(|i| t.raw_data[i * size..(i + 1) * size].iter().copied())
            .collect();
    } else {
        fn gather<T: Copy>(v: &[T], idx: Vec<usize>) -> Vec<T> {
            idx.into_iter().map(|i| v[i]).collect()
        }
        match data_type(t) {
            Some(DataType::FLOAT) => {
                let n = check_count(t, t.float_data.len())?;
                out.float_data = gather(&t.float_data, pick(n));
            }
            Some(DataType::INT64) => {
                let n = check_count(t, t.int64_data.len())?;
                out.int64_data = gather(&t.int64_data, pick(n));
            }
            _ => {
                let n = check_count(t, t.int32_data.len())?;
                out.int32_data = gather(&t.int32_data, pick(n));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_typed_encodings_read_alike_and_counts_are_checked() {
        let typed = float_tensor("w", &[2, 2], vec![1.0, -2.0, 3.5, 0.25]);
        let mut raw = typed.clone();
        raw.float_data.clear();
        raw.raw_data = [1.0f32, -2.0, 3.5, 0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(read_f32(&typed).unwrap(), read_f32(&raw).unwrap());
        let h = float16_tensor("h", &[4], &[1.0, -2.0, 3.5, 0.25]);
        assert_eq!(read_f32(&h).unwrap(), vec![1.0, -2.0, 3.5, 0.25]);
        let mut short = typed.clone();
        short.float_data.pop();
        let e = read_f32(&short).unwrap_err();
        assert!(e.contains("'w'") && e.contains("3 values"), "{e}");
        assert!(read_i64(&typed).unwrap_err().contains("expected int64"));
        assert_eq!(
            read_i8(&int8_tensor("q", &[3], &[-1, 0, 127])).unwrap(),
            vec![-1, 0, 127]
        );
        assert_eq!(read_i64(&int64_tensor("a", &[0, -1])).unwrap(), vec![0, -1]);
        assert!(element_count(&[i64::MAX, 4]).is_err());
        assert!(element_count(&[-1]).is_err());
    }

    #[test]
    fn slicing_keeps_type_and_encoding_for_every_type() {
        // 2 x 3 x 2, keep channels 2 and 0 of axis 1.
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let want = vec![4.0, 5.0, 0.0, 1.0, 10.0, 11.0, 6.0, 7.0];
        let f = float_tensor("f", &[2, 3, 2], v.clone());
        let s = slice_axis(&f, 1, &[2, 0]).unwrap();
        assert_eq!(s.dims, vec![2, 2, 2]);
        assert!(s.raw_data.is_empty());
        assert_eq!(read_f32(&s).unwrap(), want);
        let h = slice_axis(&float16_tensor("h", &[2, 3, 2], &v), 1, &[2, 0]).unwrap();
        assert_eq!(read_f32(&h).unwrap(), want);
        let i8s: Vec<i8> = (0..12).collect();
        let q = slice_axis(&int8_tensor("q", &[2, 3, 2], &i8s), 1, &[2, 0]).unwrap();
        assert_eq!(
            read_i8(&q).unwrap(),
            want.iter().map(|&x| x as i8).collect::<Vec<_>>()
        );
        let mut l = int64_tensor("l", &(0..12).collect::<Vec<_>>());
        l.dims = vec![2, 3, 2];
        let l = slice_axis(&l, 1, &[2, 0]).unwrap();
        assert_eq!(
            read_i64(&l).unwrap(),
            want.iter().map(|&x| x as i64).collect::<Vec<_>>()
        );
        assert!(slice_axis(&f, 3, &[0]).is_err());
        assert!(slice_axis(&f, 1, &[3])
            .unwrap_err()
            .contains("outside axis 1"));
    }

    #[test]
    fn set_f32_keeps_the_encoding() {
        let mut raw = float16_tensor("h", &[2], &[1.0, 2.0]);
        set_f32(&mut raw, &[3], &[0.5, 1.5, 2.5]).unwrap();
        assert_eq!(raw.dims, vec![3]);
        assert!(!raw.raw_data.is_empty());
        assert_eq!(read_f32(&raw).unwrap(), vec![0.5, 1.5, 2.5]);
        let mut typed = float_tensor("f", &[1], vec![0.0]);
        set_f32(&mut typed, &[2], &[1.0, 2.0]).unwrap();
        assert_eq!(typed.float_data, vec![1.0, 2.0]);
        assert!(set_f32(&mut typed, &[3], &[1.0]).is_err());
    }
}
