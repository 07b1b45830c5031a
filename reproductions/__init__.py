"""The five reproduction notebooks, shipped in the wheel as package data of `qkit.reproductions` so that
`qkit list`, `qkit reproduce`, `qkit classroom` and the JupyterLab launcher find them from any folder.
Nothing here is Python to import: the `.ipynb` files are the content."""
