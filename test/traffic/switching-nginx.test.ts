import { switchingSuite } from './scenarios.js';

switchingSuite('nginx');
