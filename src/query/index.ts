/**
 * query/: the CEL filter language over flow records: a syntax and type check with positions before
 * any record is read, then a compiled predicate. Buf's CEL evaluator loads on the first compile.
 */
export { FilterError } from './error.js';
export { MAX_FILTER_LENGTH, compileFilter, type FlowPredicate } from './filter.js';
