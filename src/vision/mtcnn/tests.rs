use super::*;

#[test]
fn ceil_pooling_keeps_the_partial_window() {
    let x = Tensor::arange(0f32, 25.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 1, 5, 5))
        .unwrap();
    let y = max_pool_ceil(&x, 2, 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    let v = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(v, vec![6., 8., 9., 16., 18., 19., 21., 23., 24.]);
}

#[test]
fn area_resize_averages_windows() {
    let mut img = Planar::new(4, 2, 3);
    for (i, v) in img.data.iter_mut().enumerate() {
        *v = (i / 3) as f32 * 10.0;
    }
    // 4x2 -> 2x1: each output averages a 2x2 block.
    let out = area_resize(&img, 0, 0, 4, 2, 1, 2);
    let back: Vec<f32> = out.iter().map(|v| v / 0.0078125 + 127.5).collect();
    assert!(
        (back[0] - 25.0).abs() < 1e-3 && (back[1] - 45.0).abs() < 1e-3,
        "{back:?}"
    );
}

#[test]
fn nms_drops_overlaps_and_keeps_the_strongest() {
    let c = |x: f32, s: f32| Cand {
        b: [x, 0.0, x + 10.0, 10.0],
        score: s,
        reg: [0.0; 4],
    };
    let boxes = [c(0.0, 0.5), c(1.0, 0.9), c(30.0, 0.7)];
    assert_eq!(nms(&boxes, 0.5, false), vec![1, 2]);
    assert_eq!(nms(&boxes, 0.5, true), vec![1, 2]);
}
