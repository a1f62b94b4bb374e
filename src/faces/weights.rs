//! `benjamin models import-mtcnn`: reads the MTCNN weights that the MIT-licensed
//! `facenet-pytorch` 2.6.0 wheel ships (`facenet_pytorch/data/{pnet,rnet,onet}.pt`, legacy
//! non-zip PyTorch pickles of float32 tensors) and writes them as one safetensors file.
//!
//! candle reads only the zip format of PyTorch files, so the legacy layout is read here:
//! five pickles (magic number, protocol, system info, the state dict with storages as
//! persistent ids, the storage keys in order), then each storage as an 8-byte element count
//! followed by its raw little-endian data. candle's pickle interpreter does the unpickling.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{Device, Tensor};

/// The first pickle of a legacy PyTorch file: protocol 2, the 80-bit magic number
/// 0x1950a86a20f9469cfc6c as a LONG1, STOP. (candle's LONG1 decodes at most 64 bits, so these
/// bytes are matched here rather than unpickled.)
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

fn unpickle(r: &mut Cursor<&[u8]>) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(r)?;
    Ok(stack.finalize()?)
}

struct TensorRef {
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

fn ints(o: Object) -> Result<Vec<usize>> {
    match o {
        Object::Tuple(v) | Object::List(v) => v
            .into_iter()
            .map(|x| match x {
                Object::Int(i) if i >= 0 => Ok(i as usize),
                Object::Long(i) if i >= 0 => Ok(i as usize),
                other => bail!("expected a size, found {other:?}"),
            })
            .collect(),
        other => bail!("expected a tuple of sizes, found {other:?}"),
    }
}

fn tensor_ref(o: Object) -> Result<TensorRef> {
    let Object::Reduce { callable, args } = o else {
        bail!("a state-dict value is not a tensor");
    };
    match *callable {
        Object::Class {
            ref module_name,
            ref class_name,
        } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        other => bail!("a state-dict value is built by {other:?}, not a plain tensor"),
    }
    let Object::Tuple(mut args) = *args else {
        bail!("unexpected tensor arguments");
    };
    if args.len() < 4 {
        bail!("unexpected tensor arguments");
    }
    let stride = ints(args.remove(3))?;
    let shape = ints(args.remove(2))?;
    let offset = ints(Object::Tuple(vec![args.remove(1)]))?[0];
    let Object::PersistentLoad(id) = args.remove(0) else {
        bail!("a tensor without storage");
    };
    let Object::Tuple(id) = *id else {
        bail!("unexpected storage id");
    };
    // ('storage', <class FloatStorage>, key, location, size[, view])
    let storage_type = match id.get(1) {
        Some(Object::Class { class_name, .. }) => class_name.clone(),
        _ => bail!("unexpected storage id {id:?}"),
    };
    if storage_type != "FloatStorage" {
        bail!("only float32 tensors are supported, found a {storage_type}");
    }
    let key = match id.get(2) {
        Some(Object::Unicode(k)) => k.clone(),
        _ => bail!("unexpected storage id {id:?}"),
    };
    Ok(TensorRef {
        key,
        offset,
        shape,
        stride,
    })
}

/// Reads a legacy (non-zip) PyTorch state dict of float32 tensors.
pub fn read_legacy_state_dict(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    if !bytes.starts_with(&LEGACY_MAGIC) {
        if bytes.starts_with(b"PK") {
            bail!(
                "a zip-format PyTorch file, not a legacy one (candle's pickle module reads those)"
            );
        }
        bail!("not a legacy PyTorch file (bad magic number)");
    }
    let mut r = Cursor::new(bytes);
    r.set_position(LEGACY_MAGIC.len() as u64);
    let _protocol = unpickle(&mut r)?;
    let _sys_info = unpickle(&mut r)?;
    let Object::Dict(entries) = unpickle(&mut r)? else {
        bail!("the file does not hold a state dict");
    };
    let keys = match unpickle(&mut r)? {
        Object::List(v) | Object::Tuple(v) => v
            .into_iter()
            .map(|k| match k {
                Object::Unicode(s) => Ok(s),
                other => bail!("unexpected storage key {other:?}"),
            })
            .collect::<Result<Vec<_>>>()?,
        other => bail!("unexpected storage list {other:?}"),
    };
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in keys {
        let mut n = [0u8; 8];
        r.read_exact(&mut n).context("truncated storage")?;
        let n = u64::from_le_bytes(n) as usize;
        let mut raw = vec![0u8; n * 4];
        r.read_exact(&mut raw).context("truncated storage")?;
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        storages.insert(key, data);
    }
    let mut out = Vec::new();
    for (name, value) in entries {
        let Object::Unicode(name) = name else {
            bail!("a state-dict key is not a string");
        };
        if name == "_metadata" {
            // The state dict's module versions (an attribute of the OrderedDict), not a tensor.
            continue;
        }
        let t = tensor_ref(value).with_context(|| format!("tensor {name}"))?;
        let numel: usize = t.shape.iter().product();
        let storage = storages
            .get(&t.key)
            .with_context(|| format!("tensor {name}: storage {} is missing", t.key))?;
        // The weights converted from Caffe are strided views (transposed), so elements are
        // gathered by their strides into row-major order.
        let mut data = Vec::with_capacity(numel);
        let mut index = vec![0usize; t.shape.len()];
        for _ in 0..numel {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            data.push(
                *storage
                    .get(at)
                    .with_context(|| format!("tensor {name} runs past its storage"))?,
            );
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        let tensor = Tensor::from_vec(data, t.shape.as_slice(), &Device::Cpu)?;
        out.push((name, tensor));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The three networks' files, from the facenet-pytorch wheel or a folder holding them.
fn read_sources(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if path.is_dir() {
        for net in ["pnet", "rnet", "onet"] {
            let file = path.join(format!("{net}.pt"));
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            out.push((net.to_string(), bytes));
        }
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).with_context(|| {
            format!(
                "{} is neither a folder with pnet.pt, rnet.pt and onet.pt nor a wheel (zip)",
                path.display()
            )
        })?;
        for net in ["pnet", "rnet", "onet"] {
            let name = format!("facenet_pytorch/data/{net}.pt");
            let mut entry = zip
                .by_name(&name)
                .with_context(|| format!("{} has no {name}", path.display()))?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            out.push((net.to_string(), bytes));
        }
    }
    Ok(out)
}

/// Converts the MTCNN weights at `source` (wheel or folder) into one safetensors file with
/// names `pnet.conv1.weight`, ...; returns the number of tensors written.
pub fn import_mtcnn(source: &Path, out: &Path) -> Result<usize> {
    let mut tensors = HashMap::new();
    for (net, bytes) in read_sources(source)? {
        let dict = read_legacy_state_dict(&bytes).with_context(|| format!("{net}.pt"))?;
        for (name, t) in dict {
            tensors.insert(format!("{net}.{name}"), t);
        }
    }
    // Checked by building the detector from them before anything is written.
    crate::vision::mtcnn::Mtcnn::from_tensors(&tensors, &Device::Cpu)
        .context("the converted weights do not fit MTCNN")?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::nn::save_tensors(out, &tensors)?;
    Ok(tensors.len())
}
