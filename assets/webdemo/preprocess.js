// CNN Studio's one way to turn a picture into model input, as the app does it with Pillow (core/images.py):
//   1. transparent pixels onto white (Pillow's alpha_composite over a white background),
//   2. grayscale models: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (Pillow's convert("L")),
//   3. resize to the model's size with Pillow's BILINEAR filter: a triangle filter widened by the scale factor
//      when shrinking (so it averages every source pixel, no aliasing), aspect ratio not kept, 8-bit rounding
//      as Pillow's fixed-point code does it,
//   4. the values 0..255 as float32, NHWC: the model normalizes them itself.
// The same picture gives the same pixels, bit for bit, here and in the app, so the same probabilities.
// Works in the browser (functions on `window`) and in Node (module.exports), where the tests compare it with
// Pillow.
"use strict";

(function (root) {
  const PRECISION_BITS = 32 - 8 - 2; // Pillow's Resample.c
  const ONE = 2 ** PRECISION_BITS;

  // Per output pixel: the first source pixel, how many, and their fixed-point weights (Pillow's
  // precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter).
  function coefficients(inSize, outSize) {
    const scale = inSize / outSize;
    const filterScale = Math.max(scale, 1.0);
    const support = 1.0 * filterScale;
    const result = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const ss = 1.0 / filterScale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const count = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      const weights = [];
      let total = 0.0;
      for (let x = 0; x < count; x++) {
        const d = Math.abs((x + xmin - center + 0.5) * ss);
        const w = d < 1.0 ? 1.0 - d : 0.0;
        weights.push(w);
        total += w;
      }
      const fixed = weights.map((w) => {
        const k = total !== 0.0 ? w / total : w;
        return k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
      });
      result.push({ xmin, count, fixed });
    }
    return result;
  }

  function clip8(sum) {
    return Math.min(255, Math.max(0, Math.floor(sum / ONE)));
  }

  // One pass of Pillow's resampling along the rows (horizontal) or the columns (vertical) of 8-bit pixels
  // (height x width x channels, row-major), rounded to 8 bits as Pillow's fixed-point code does.
  function horizontalPass(data, width, height, channels, outWidth) {
    const out = new Uint8Array(height * outWidth * channels);
    const taps = coefficients(width, outWidth);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < outWidth; xx++) {
        const { xmin, count, fixed } = taps[xx];
        for (let c = 0; c < channels; c++) {
          let sum = ONE / 2;
          for (let x = 0; x < count; x++) sum += data[(y * width + x + xmin) * channels + c] * fixed[x];
          out[(y * outWidth + xx) * channels + c] = clip8(sum);
        }
      }
    }
    return out;
  }

  function verticalPass(data, width, height, channels, outHeight) {
    const out = new Uint8Array(outHeight * width * channels);
    const taps = coefficients(height, outHeight);
    for (let yy = 0; yy < outHeight; yy++) {
      const { xmin, count, fixed } = taps[yy];
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < channels; c++) {
          let sum = ONE / 2;
          for (let y = 0; y < count; y++) sum += data[((xmin + y) * width + x) * channels + c] * fixed[y];
          out[(yy * width + x) * channels + c] = clip8(sum);
        }
      }
    }
    return out;
  }

  // Resize like Pillow 13's Image.resize(..., BILINEAR): two passes, each rounded to 8 bits. Pillow starts with
  // the vertical pass when it removes more than twice as many rows as the horizontal one removes columns, else
  // with the horizontal pass (measured against Pillow on 1,470 random sizes; tests/test_preprocess.py checks it).
  function resizeBilinear(data, width, height, channels, outWidth, outHeight) {
    const needH = outWidth !== width;
    const needV = outHeight !== height;
    if (needH && needV && Math.max(height - outHeight, 0) > 2 * Math.max(width - outWidth, 0)) {
      return horizontalPass(verticalPass(data, width, height, channels, outHeight), width, outHeight, channels, outWidth);
    }
    let out = needH ? horizontalPass(data, width, height, channels, outWidth) : Uint8Array.from(data);
    if (needV) out = verticalPass(out, outWidth, height, channels, outHeight);
    return out;
  }

  // RGBA (as canvas getImageData gives it) to RGB on white, or to Pillow's L, 8 bits per value.
  function fromRGBA(rgba, width, height, channels) {
    const out = new Uint8Array(width * height * channels);
    const onWhite = (value, a) => {
      const v = value * a + 255 * (255 - a) + 128; // Pillow's alpha_composite over a white background
      return (v + (v >> 8)) >> 8;
    };
    for (let i = 0; i < width * height; i++) {
      const a = rgba[4 * i + 3];
      const r = onWhite(rgba[4 * i], a);
      const g = onWhite(rgba[4 * i + 1], a);
      const b = onWhite(rgba[4 * i + 2], a);
      if (channels === 1) {
        out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
      } else {
        out[3 * i] = r;
        out[3 * i + 1] = g;
        out[3 * i + 2] = b;
      }
    }
    return out;
  }

  // Model input from RGBA pixels: Float32Array of height*width*channels raw values 0..255 (NHWC).
  function modelInput(rgba, width, height, outWidth, outHeight, channels) {
    const pixels = resizeBilinear(fromRGBA(rgba, width, height, channels), width, height, channels, outWidth, outHeight);
    return Float32Array.from(pixels);
  }

  // Model input from an <img>, <video>, <canvas> or ImageBitmap, read at its full size.
  function cnnStudioPixels(source, outWidth, outHeight, channels) {
    const width = source.naturalWidth || source.videoWidth || source.width;
    const height = source.naturalHeight || source.videoHeight || source.height;
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(source, 0, 0, width, height);
    const rgba = context.getImageData(0, 0, width, height).data;
    return modelInput(rgba, width, height, outWidth, outHeight, channels);
  }

  const api = { resizeBilinear, fromRGBA, modelInput, cnnStudioPixels };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else Object.assign(root, api);
})(typeof window !== "undefined" ? window : globalThis);
