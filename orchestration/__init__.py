"""cartera: daily collections-portfolio segmentation for Peruvian lenders."""

__version__ = "0.1.0"
