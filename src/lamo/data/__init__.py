"""Video-caption datasets for training (``lamo.data.videos``)."""
from .videos import VideoCaptionDataset, read_index

__all__ = ["VideoCaptionDataset", "read_index"]
