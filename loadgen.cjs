'use strict';
// CommonJS entry of `rawio/loadgen`, as index.cjs is of `rawio`: the ES module, through require(esm).
module.exports = require('./dist/src/loadgen/index.js');
