'use strict';
// CommonJS entry: rawio is written as ES modules; Node >= 20.19 can require() them.
module.exports = require('./dist/src/index.js');
