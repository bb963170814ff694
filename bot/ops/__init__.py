"""Operations: the command line, starting the stack, training and evaluating the model."""
