"""Neural-network layers, losses and helpers, named as in ``torch.nn``."""
from . import functional, utils
from .activation import ReLU, Sigmoid, Tanh
from .container import Sequential
from .dropout import Dropout
from .gru import GRU, GRUCell
from .linear import Linear
from .loss import CrossEntropyLoss, MSELoss
from .lstm import LSTM, LSTMCell
from .module import Module, Parameter
from .rnn import RNN, RNNCell
from .rnn_base import RNNBase, RNNCellBase

__all__ = ["Module", "Parameter", "Linear", "RNN", "RNNCell", "LSTM", "LSTMCell", "GRU",
           "GRUCell", "RNNBase", "RNNCellBase", "Tanh", "ReLU", "Sigmoid",
           "Sequential", "Dropout", "MSELoss", "CrossEntropyLoss", "functional", "utils"]
