// Loaded before tf.min.js so that TF.js runs under this page's Content-Security-Policy without 'unsafe-eval'.
// tf.min.js bundles regenerator-runtime, which sets the global `regeneratorRuntime` by plain assignment; in
// strict mode that assignment throws when the global does not exist yet, and the fallback,
// Function("r", "regeneratorRuntime = r"), is an eval the policy refuses, which would stop tf.min.js from
// loading at all. Declaring the global first makes the assignment succeed: nothing is evaluated from a string.
var regeneratorRuntime;
