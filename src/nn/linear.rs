//! A linear layer whose product, bias and backward pass are one CPU kernel each: `x W^T + b`
//! straight into the output, and on the way back `dx = g W`, `dW = g^T x`, `db = sum(g)`.
//! candle's composed layer records a transpose, a product, a broadcast and two reshapes, and
//! its backward pass zeroes and adds a gradient buffer for every one of them.

use candle_core::{CpuStorage, Module, Result, Shape, Tensor};

use super::fused::{add_bias, on_cpu, values, Fused, Input, Kernel};
use super::gemm::{gemm, View};

/// candle-nn's weights and initialisation (`weight` `[out, in]`, `bias` `[out]`), so that
/// checkpoints keep their names.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

pub fn linear(inputs: usize, outputs: usize, vb: candle_nn::VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear(inputs, outputs, vb)?;
    let bias = l.bias().cloned().expect("candle_nn::linear has a bias");
    Ok(Linear {
        weight: l.weight().clone(),
        bias,
    })
}

impl Module for Linear {
    /// `x` `[.., in]` to `[.., out]`; rows are kept 2-D when they come in 2-D.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inputs = *dims.last().unwrap_or(&0);
        let rows = x.elem_count() / inputs.max(1);
        let flat = if dims.len() == 2 {
            x.clone()
        } else {
            x.reshape((rows, inputs))?
        };
        let y = if on_cpu(&flat) && on_cpu(&self.weight) {
            flat.contiguous()?
                .apply_op3(&self.weight, &self.bias, Fused(LinearOp))?
        } else {
            add_bias(&flat.matmul(&self.weight.t()?)?, &self.bias)?
        };
        if dims.len() == 2 {
            return Ok(y);
        }
        let mut shape = dims;
        *shape.last_mut().expect("rank checked") = self.bias.dim(0)?;
        y.reshape(shape)
    }
}

/// `x W^T` with a weight that does not learn (a pretrained base under adapters): its backward
/// pass gives only `dx`; candle's product would also work out the weight's gradient, as much
/// arithmetic again, only to drop it.
pub fn frozen_linear(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let inputs = *dims.last().unwrap_or(&0);
    let flat = x.reshape(((), inputs))?;
    let y = if on_cpu(&flat) && on_cpu(weight) {
        flat.contiguous()?
            .apply_op2(weight, Fused(FrozenLinearOp))?
    } else {
        flat.matmul(&weight.detach().t()?)?
    };
    let mut shape = dims;
    *shape.last_mut().unwrap_or(&mut 0) = weight.dim(0)?;
    y.reshape(shape)
}

struct FrozenLinearOp;

impl Kernel<2> for FrozenLinearOp {
    const NAME: &'static str = "frozen-linear";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (rows, inputs) = l1.shape().dims2()?;
        let (outputs, w_inputs) = l2.shape().dims2()?;
        if w_inputs != inputs {
            candle_core::bail!(
                "linear: input rows of {inputs} against a weight of {outputs}x{w_inputs}"
            );
        }
        let mut y = vec![0f32; rows * outputs];
        product(
            (rows, outputs, inputs),
            &mut y,
            false,
            x,
            (inputs, 1),
            w,
            (1, inputs),
        );
        Ok((CpuStorage::F32(y), Shape::from((rows, outputs))))
    }

    fn backward(
        &self,
        [_, w]: [&Tensor; 2],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 2]> {
        let dx = grad.contiguous()?.apply_op2_no_bwd(w, &Fused(InputGrad))?;
        Ok([Some(dx), None])
    }
}

/// `dst (m x n) = a (m x k) b (k x n)` (+ `dst` when `accumulate`), `dst` contiguous and
/// the factors given as (row stride, column stride).
#[allow(clippy::too_many_arguments)]
fn product(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
) {
    let view = |rs, cs| View { offset: 0, rs, cs };
    let (av, bv) = (view(a_rs, a_cs), view(b_rs, b_cs));
    gemm(
        (m, n, k),
        dst,
        View::rows(0, n),
        accumulate,
        a,
        av,
        b,
        bv,
        1.0,
    );
}

struct LinearOp;

impl Kernel<3> for LinearOp {
    const NAME: &'static str = "fused-linear";

    fn forward(
        &self,
        [(s1, l1), (s2, l2), (s3, l3)]: [Input<'_>; 3],
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            values::<f32>(s1, l1)?,
            values::<f32>(s2, l2)?,
            values::<f32>(s3, l3)?,
        );
        let (rows, inputs) = l1.shape().dims2()?;
        let (outputs, w_inputs) = l2.shape().dims2()?;
        if w_inputs != inputs || b.len() != outputs {
            candle_core::bail!(
                "linear: input rows of {inputs} against a weight of {outputs}x{w_inputs} and a bias of {}",
                b.len()
            );
        }
        // Every row starts as the bias; the product accumulates onto it.
        let mut y: Vec<f32> = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        // y += x W^T: W^T is W read with its strides swapped.
        product(
            (rows, outputs, inputs),
            &mut y,
            true,
            x,
            (inputs, 1),
            w,
            (1, inputs),
        );
        Ok((CpuStorage::F32(y), Shape::from((rows, outputs))))
    }

    fn backward(
        &self,
        [x, w, _]: [&Tensor; 3],
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<[Option<Tensor>; 3]> {
        let grad = grad.contiguous()?;
        let dx = grad.apply_op2_no_bwd(w, &Fused(InputGrad))?;
        let dw = grad.apply_op2_no_bwd(x, &Fused(WeightGrad))?;
        let db = grad.apply_op1_no_bwd(&Fused(super::fused::ColumnSum))?;
        Ok([Some(dx), Some(dw), Some(db)])
    }
}

/// `dx = g W`.
struct InputGrad;

impl Kernel<2> for InputGrad {
    const NAME: &'static str = "fused-linear-input-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (g, w) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (rows, outputs) = l1.shape().dims2()?;
        let (_, inputs) = l2.shape().dims2()?;
        let mut dx = vec![0f32; rows * inputs];
        product(
            (rows, inputs, outputs),
            &mut dx,
            false,
            g,
            (outputs, 1),
            w,
            (inputs, 1),
        );
        Ok((CpuStorage::F32(dx), Shape::from((rows, inputs))))
    }
}

/// `dW = g^T x`.
struct WeightGrad;

impl Kernel<2> for WeightGrad {
    const NAME: &'static str = "fused-linear-weight-grad";

    fn forward(&self, [(s1, l1), (s2, l2)]: [Input<'_>; 2]) -> Result<(CpuStorage, Shape)> {
        let (g, x) = (values::<f32>(s1, l1)?, values::<f32>(s2, l2)?);
        let (rows, outputs) = l1.shape().dims2()?;
        let (_, inputs) = l2.shape().dims2()?;
        let mut dw = vec![0f32; outputs * inputs];
        product(
            (outputs, inputs, rows),
            &mut dw,
            false,
            g,
            (1, outputs),
            x,
            (inputs, 1),
        );
        Ok((CpuStorage::F32(dw), Shape::from((outputs, inputs))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn frozen_linear_gives_the_inputs_gradient_only() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (5, 7), &dev)?;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 7), &dev)?)?;
        let ours = frozen_linear(&x, &w)?;
        let theirs = x.broadcast_matmul(&w.t()?)?;
        let diff = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "outputs differ by {diff}");
        let g = Tensor::randn(0f32, 1.0, (2, 3, 5), &dev)?;
        let ga = (ours * &g)?.sum_all()?.backward()?;
        let gb = (theirs * &g)?.sum_all()?.backward()?;
        let (p, q) = (
            ga.get(x.as_tensor()).unwrap(),
            gb.get(x.as_tensor()).unwrap(),
        );
        let diff = (p - q)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "input gradients differ by {diff}");
        assert!(ga.get(&w).is_none(), "a frozen weight gets no gradient");
        Ok(())
    }

    #[test]
    fn matches_candles_linear_with_every_gradient() -> Result<()> {
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let ours = linear(7, 5, vb.pp("l"))?;
        let theirs = candle_nn::Linear::new(ours.weight.clone(), Some(ours.bias.clone()));
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 7), &Device::Cpu)?)?;
        let (a, b) = (ours.forward(&x)?, theirs.forward(&x)?);
        assert_eq!(a.dims(), &[2, 3, 5]);
        let diff = (&a - &b)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "outputs differ by {diff}");
        let w = Tensor::randn(0f32, 1.0, (2, 3, 5), &Device::Cpu)?;
        let ga = (a * &w)?.sum_all()?.backward()?;
        let gb = (b * &w)?.sum_all()?.backward()?;
        for t in [x.as_tensor(), &ours.weight, &ours.bias] {
            let (p, q) = (ga.get(t).unwrap(), gb.get(t).unwrap());
            let diff = (p - q)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "gradients differ by {diff}");
        }
        Ok(())
    }
}
