"""Sphinx configuration: MyST pages, autosummary API reference, myst-nb tutorials."""

import os
from datetime import date
from importlib.metadata import version as _version

project = "sccalmflow"
author = "sccalmflow developers"
copyright = f"{date.today().year}, {author}"
release = _version("sccalmflow")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxcontrib.bibtex",
]
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"
# cross-links to other projects' docs need the network: only where it is available
if os.environ.get("READTHEDOCS"):
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "pandas": ("https://pandas.pydata.org/docs/", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
    }

# .rst first: autosummary writes its stub pages with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
master_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# ---- MyST / notebooks: the tutorial is stored executed; the build never runs it
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
nb_output_stderr = "remove"  # training logs and library warnings stay out of the pages
nb_merge_streams = True

# ---- API reference
autosummary_generate = True
autodoc_member_order = "bysource"
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    "show-inheritance": False,
    "exclude-members": "__init__",  # the class signature and Parameters already say it
}
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_ivar = True  # "Attributes" as fields: no second description of each attribute
napoleon_use_param = True
typehints_defaults = "comma"
always_document_param_types = False
# the model imports torch, lightning and scvi-tools: they are installed on the build machine
autodoc_mock_imports: list[str] = []

# ---- HTML
html_theme = "sphinx_book_theme"
html_title = "sccalmflow"
html_theme_options = {
    "repository_url": "https://github.com/sccalmflow/sccalmflow",
    "use_repository_button": True,
    "path_to_docs": "docs",
    "show_toc_level": 2,
}
html_static_path = ["_static"]
html_css_files = ["custom.css"]
