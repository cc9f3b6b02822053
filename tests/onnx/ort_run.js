// Runs an ONNX model in ONNX Runtime (onnxruntime-node, installed by scripts/bootstrap.sh
// --test into build/ort; NODE_PATH points there). Used by tests/onnx.
//   node ort_run.js run MODEL IN.f32 D0,D1,... OUT.f32
//       feeds the raw float32 file as the model's first input with those dims, writes its
//       first output as raw float32 and prints the output's dims ("3,10")
//   node ort_run.js predict-idx MODEL IMAGES-idx3-ubyte[.gz] D1,D2,...
//   node ort_run.js predict-csv MODEL FILE.csv LABEL_COLUMN D1,...
//       raw values as float32 (pixels 0-255; CSV columns but the label) in batches of
//       [N, D1, ...]; prints the argmax of the first output, one class per line
'use strict';
const fs = require('fs');
const zlib = require('zlib');
const ort = require('onnxruntime-node');

const dims = (s) => s.split(',').filter((v) => v.length > 0).map(Number);

async function runBatches(session, data, sampleDims) {
  const per = sampleDims.reduce((a, b) => a * b, 1);
  const n = data.length / per;
  const out = [];
  for (let start = 0; start < n; start += 1000) {
    const len = Math.min(1000, n - start);
    const x = new ort.Tensor('float32', data.subarray(start * per, (start + len) * per),
                             [len, ...sampleDims]);
    const r = await session.run({[session.inputNames[0]]: x});
    const y = r[session.outputNames[0]];
    const classes = y.dims[1];
    for (let i = 0; i < len; ++i) {
      let best = 0;
      for (let c = 1; c < classes; ++c)
        if (y.data[i * classes + c] > y.data[i * classes + best]) best = c;
      out.push(best);
    }
  }
  return out;
}

async function main() {
  const [mode, model, ...rest] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model);
  if (mode === 'run') {
    const [input, shape, output] = rest;
    const buf = fs.readFileSync(input);
    const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
    const r = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, dims(shape))});
    const y = r[session.outputNames[0]];
    fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
    console.log(y.dims.join(','));
  } else if (mode === 'predict-idx') {
    const [file, shape] = rest;
    let buf = fs.readFileSync(file);
    if (file.endsWith('.gz')) buf = zlib.gunzipSync(buf);
    const ndim = buf[3];
    const data = Float32Array.from(buf.subarray(4 + 4 * ndim));
    console.log((await runBatches(session, data, dims(shape))).join('\n'));
  } else if (mode === 'predict-csv') {
    const [file, label, shape] = rest;
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0);
    const header = lines[0].split(',').map((s) => s.trim());
    const skip = header.indexOf(label);
    const values = [];
    for (const line of lines.slice(1))
      line.split(',').forEach((v, i) => { if (i !== skip) values.push(Number(v)); });
    console.log((await runBatches(session, Float32Array.from(values), dims(shape))).join('\n'));
  } else {
    throw new Error('ort_run.js: unknown mode ' + mode);
  }
}

main().catch((e) => { console.error('ort_run.js: ' + e.message); process.exit(1); });
