"""Pure analyses: tensors/arrays in, arrays/DataFrames out. Never imports streamlit."""
