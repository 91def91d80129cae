import { switchingSuite } from './scenarios.js';

switchingSuite('embedded');
