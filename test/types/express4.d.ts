// `express4` is Express 4 installed under an alias; its API is the one @types/express describes.
declare module 'express4' {
  import express = require('express');
  export = express;
}
